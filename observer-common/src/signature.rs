//! The signatures observer reports, by their stable kebab-case names: what findings, `--until`,
//! incidents and metric labels all say, as one type.
use core::fmt;

macro_rules! signatures {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, )*) => {
        /// One failure or hang pattern observer can recognise.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize, clap::ValueEnum))]
        #[cfg_attr(feature = "user", serde(rename_all = "kebab-case"))]
        pub enum Signature {
            $( $(#[$doc])* $variant, )*
        }

        impl Signature {
            /// Every signature, in the order they are documented.
            pub const ALL: &'static [Signature] = &[$(Signature::$variant,)*];

            /// The stable name (`clone-eagain`), as in `classification.json`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Signature::$variant => $name,)*
                }
            }
        }
    };
}

signatures! {
    /// A new thread's stack could not be made writable (`mprotect` ENOMEM).
    PthreadStackMprotectEnomem = "pthread-stack-mprotect-enomem",
    /// A new thread's stack could not be mapped (`mmap` MAP_STACK ENOMEM).
    PthreadStackMmapEnomem = "pthread-stack-mmap-enomem",
    /// A thread or process could not be created (`clone`/`clone3`/`fork`/`vfork` EAGAIN).
    CloneEagain = "clone-eagain",
    /// A private writable mapping (a heap arena, a JVM thread stack) could not be made (`mmap`
    /// ENOMEM) under a data or address-space limit.
    MmapEnomem = "mmap-enomem",
    /// The harmless 5-level-paging probe of an address-space reservation (`mmap` ENOMEM).
    VaProbeEnomem = "va-probe-enomem",
    /// A process ended by a signal.
    FatalSignal = "fatal-signal",
    /// A process stopped by SIGTTIN/SIGTTOU/SIGTSTP/SIGSTOP.
    JobControlStop = "job-control-stop",
    /// The command exited with a non-zero code.
    ExitNonzero = "exit-nonzero",
    /// Everything asleep, no progress.
    HangBlocked = "hang-blocked",
    /// A thread on CPU without syscalls.
    HangSpinning = "hang-spinning",
    /// A stopped process holds the tree.
    HangStopped = "hang-stopped",
    /// A cycle of mutex waits.
    Deadlock = "deadlock",
    /// Waiting on a hung child.
    HangWaitingChild = "hang-waiting-child",
}

impl Signature {
    /// One of the hang signatures, read from a stuck snapshot (`hang-*` and `deadlock`).
    pub const fn is_hang(self) -> bool {
        matches!(
            self,
            Signature::HangBlocked
                | Signature::HangSpinning
                | Signature::HangStopped
                | Signature::Deadlock
                | Signature::HangWaitingChild
        )
    }

    /// The signature with this stable name.
    pub fn from_name(name: &str) -> Option<Signature> {
        Signature::ALL.iter().copied().find(|s| s.name() == name)
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// Ordered by name, so sorted lists and maps read as they did when signatures were strings.
impl Ord for Signature {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.name().cmp(other.name())
    }
}

impl PartialOrd for Signature {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
