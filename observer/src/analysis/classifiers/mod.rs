//! The signature classifiers, one module per family; `all` lists them in the order they run
//! (`exit-nonzero` last: it only speaks when nothing else explains the exit).
mod exit;
mod hang;
mod memory;
mod signals;
mod tasks;

#[cfg(test)]
pub(crate) mod testing;

use super::Classifier;

pub fn all() -> Vec<Box<dyn Classifier>> {
    vec![
        Box::new(memory::StackCommit::default()),
        Box::new(memory::StackMap::default()),
        Box::new(memory::MapFailure::default()),
        Box::new(memory::VaProbe::default()),
        Box::new(tasks::CloneEagain::default()),
        Box::new(signals::FatalSignal::default()),
        Box::new(signals::JobControlStop::default()),
        Box::new(hang::Hang),
        Box::new(exit::ExitNonzero),
    ]
}

/// `40 MiB` / `8 KiB` / `123 bytes`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size && n.is_multiple_of((size / 1024).max(1)) {
            let value = n as f64 / size as f64;
            return if value.fract() == 0.0 { format!("{value:.0} {unit}") } else { format!("{value:.1} {unit}") };
        }
    }
    format!("{n} bytes")
}
