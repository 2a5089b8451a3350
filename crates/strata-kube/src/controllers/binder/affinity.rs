//! Whether a PV's `spec.nodeAffinity` admits a node (upstream's
//! `CheckNodeAffinity`): the required node-selector terms are ORed, the
//! requirements inside a term ANDed.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm, PersistentVolume};

/// Whether the PV's required node affinity admits a node with these
/// labels; a PV without one fits every node. The scheduler filters nodes
/// with it too.
pub fn volume_fits_node(pv: &PersistentVolume, node_labels: &BTreeMap<String, String>) -> bool {
    let required = pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref());
    required.is_none_or(|selector| {
        selector
            .node_selector_terms
            .iter()
            .any(|term| term_matches(term, node_labels))
    })
}

/// A term with no requirements matches no node, as upstream.
fn term_matches(term: &NodeSelectorTerm, node_labels: &BTreeMap<String, String>) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    // Upstream checks fields against a node it knows only by its labels, so
    // `metadata.name` reads as empty there too; other fields are invalid.
    let field_value = |r: &NodeSelectorRequirement| (r.key == "metadata.name").then_some("");
    expressions
        .iter()
        .all(|r| requirement_matches(r, node_labels.get(&r.key).map(String::as_str)))
        && fields
            .iter()
            .all(|r| field_value(r).is_some() && requirement_matches(r, field_value(r)))
}

/// Whether a node whose label (or field) `r.key` is `value` satisfies the
/// requirement. A malformed requirement (wrong number of values, a
/// non-integer for `Gt`/`Lt`, an unknown operator) matches nothing, which is
/// how upstream treats a term it cannot parse.
fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let listed = |v: &str| values.iter().any(|listed| listed == v);
    match r.operator.as_str() {
        "In" => !values.is_empty() && value.is_some_and(listed),
        "NotIn" => !values.is_empty() && value.is_none_or(|v| !listed(v)),
        "Exists" => values.is_empty() && value.is_some(),
        "DoesNotExist" => values.is_empty() && value.is_none(),
        "Gt" | "Lt" => {
            let [limit] = values else {
                return false;
            };
            let (Ok(limit), Some(Ok(actual))) =
                (limit.parse::<i64>(), value.map(str::parse::<i64>))
            else {
                return false;
            };
            if r.operator == "Gt" {
                actual > limit
            } else {
                actual < limit
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn check(affinity: serde_json::Value, node: &[(&str, &str)], expected: bool) {
        let pv: PersistentVolume = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "pv"},
            "spec": {"nodeAffinity": affinity},
        }))
        .unwrap();
        assert_eq!(
            volume_fits_node(&pv, &labels(node)),
            expected,
            "{affinity} vs {node:?}"
        );
    }

    fn terms(terms: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"required": {"nodeSelectorTerms": terms}})
    }

    fn expr(key: &str, operator: &str, values: &[&str]) -> serde_json::Value {
        serde_json::json!({"key": key, "operator": operator, "values": values})
    }

    #[test]
    fn operators_follow_upstream() {
        let zone_a = [("zone", "a"), ("cpus", "8")];
        let cases = [
            (expr("zone", "In", &["a", "b"]), true),
            (expr("zone", "In", &["b"]), false),
            (expr("zone", "In", &[]), false),
            (expr("zone", "NotIn", &["b"]), true),
            (expr("zone", "NotIn", &["a"]), false),
            (expr("rack", "NotIn", &["r1"]), true),
            (expr("zone", "Exists", &[]), true),
            (expr("rack", "Exists", &[]), false),
            (expr("zone", "Exists", &["a"]), false),
            (expr("rack", "DoesNotExist", &[]), true),
            (expr("zone", "DoesNotExist", &[]), false),
            (expr("cpus", "Gt", &["4"]), true),
            (expr("cpus", "Gt", &["8"]), false),
            (expr("cpus", "Lt", &["16"]), true),
            (expr("cpus", "Lt", &["x"]), false),
            (expr("zone", "Gt", &["1"]), false),
            (expr("cpus", "Gt", &["1", "2"]), false),
            (expr("zone", "Near", &["a"]), false),
        ];
        for (requirement, expected) in cases {
            let affinity = terms(serde_json::json!([{"matchExpressions": [requirement]}]));
            check(affinity, &zone_a, expected);
        }
    }

    #[test]
    fn terms_are_ored_and_requirements_anded() {
        let node = [("zone", "a"), ("disk", "ssd")];
        let both = serde_json::json!([{"matchExpressions": [
            expr("zone", "In", &["a"]), expr("disk", "In", &["hdd"]),
        ]}]);
        check(terms(both), &node, false);
        let either = serde_json::json!([
            {"matchExpressions": [expr("zone", "In", &["b"])]},
            {"matchExpressions": [expr("disk", "In", &["ssd"])]},
        ]);
        check(terms(either), &node, true);
        check(terms(serde_json::json!([{}])), &node, false);
        check(terms(serde_json::json!([])), &node, false);
        check(serde_json::json!({}), &node, true);
        let by_name = serde_json::json!([{"matchFields": [expr("metadata.name", "In", &["n1"])]}]);
        check(terms(by_name), &node, false);
    }
}
