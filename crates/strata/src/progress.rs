//! Progress bars on a terminal; nothing otherwise.

use std::cell::RefCell;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use strata_image::progress::{Progress, Quiet};

pub struct Bars {
    current: RefCell<Option<ProgressBar>>,
}

impl Progress for Bars {
    fn start(&self, what: &str, total: Option<u64>) {
        let bar = match total {
            Some(t) => ProgressBar::new(t),
            None => ProgressBar::new_spinner(),
        };
        let style = ProgressStyle::with_template(
            "{msg:40!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .expect("valid template")
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(what.to_owned());
        *self.current.borrow_mut() = Some(bar);
    }

    fn position(&self, done: u64) {
        if let Some(bar) = &*self.current.borrow() {
            bar.set_position(done);
        }
    }

    fn finish(&self, _summary: &str) {
        if let Some(bar) = self.current.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }
}

/// Bars when stderr is a terminal and not asked to be quiet.
pub fn for_terminal(quiet: bool) -> Box<dyn Progress> {
    if !quiet && std::io::stderr().is_terminal() {
        Box::new(Bars {
            current: RefCell::new(None),
        })
    } else {
        Box::new(Quiet)
    }
}
