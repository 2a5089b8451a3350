//! Which stages a build needs: the target and, transitively, every stage
//! it is built FROM or copies from. Only those are built, in file order.

use std::collections::BTreeSet;

use strata_dockerfile::Dockerfile;

use crate::error::{Result, invalid};

/// The target stage's index: `--target`, or the last stage.
pub(crate) fn target(df: &Dockerfile, name: Option<&str>) -> Result<usize> {
    match name {
        None => Ok(df.stages.len() - 1),
        Some(n) => df.stage_index(n).ok_or_else(|| {
            let names: Vec<&str> = df.stages.iter().filter_map(|s| s.name.as_deref()).collect();
            invalid(format!(
                "target stage '{n}' could not be found; the Dockerfile's stages are: {}",
                if names.is_empty() {
                    "(none named)".to_owned()
                } else {
                    names.join(", ")
                }
            ))
        }),
    }
}

/// The stages `target` needs, itself included, in file order. `base`
/// gives a stage's FROM after expansion.
pub(crate) fn needed(
    df: &Dockerfile,
    target: usize,
    base: &dyn Fn(usize) -> Result<String>,
) -> Result<Vec<usize>> {
    let mut need = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !need.insert(i) {
            continue;
        }
        let mut refs = vec![base(i)?];
        for ins in &df.stages[i].instructions {
            refs.extend(ins.stage_refs());
        }
        for r in refs {
            if let Some(j) = df.stage_index(&r)
                && j < i
            {
                todo.push(j);
            }
        }
    }
    Ok(need.into_iter().collect())
}
