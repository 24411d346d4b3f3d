//! Sampling where one busy thread's user code runs: attaches the `sample_user_stack` perf_event
//! program to that thread's cpu-clock for a while, then reads and clears what it counted.
use std::{collections::HashMap as StdHashMap, time::Duration};

use aya::{
    maps::{HashMap, Map, MapData, PerCpuArray, StackTraceMap},
    programs::{
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
        PerfEvent, ProgramError,
    },
    Ebpf,
};

use observer_common::maps::{
    names::{SAMPLES, SAMPLE_COUNTERS as COUNTERS, SAMPLE_STACKS as STACKS},
    programs::SAMPLE_USER_STACK as PROGRAM,
    sample_counters::{self, SAMPLED_KERNEL, SAMPLED_USER, SAMPLES_FULL, STACK_FAILED},
    SampleKey,
};

use super::{probes::load_error, CaptureError, Probes};

/// Where a sampled thread was, and how many ticks found it there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackSample {
    /// User pc when the tick interrupted user code; 0 when it interrupted the kernel (a syscall or
    /// a fault), where the user pc is not in the registers the tick saw.
    pub ip: u64,
    /// User stack as the kernel unwound it, innermost first; its first entry is the user pc (for
    /// kernel-mode ticks, the one saved on kernel entry). The kernel follows frame pointers, so
    /// past the first frame it is only trustworthy for code built with them. Empty when the
    /// stack could not be recorded.
    pub stack: Vec<u64>,
    pub count: u32,
}

impl StackSample {
    /// The innermost user address known for this sample: the pc, else the stack's first frame.
    pub fn leaf(&self) -> Option<u64> {
        if self.ip != 0 {
            Some(self.ip)
        } else {
            self.stack.first().copied()
        }
    }
}

/// What the kernel side counted during one sampling run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SampleStats {
    /// Ticks that interrupted the thread's user code.
    pub user_mode: u64,
    /// Ticks that interrupted it in the kernel: no user pc, only the stack.
    pub kernel_mode: u64,
    /// Ticks whose user stack could not be stored (no user context, a fault while unwinding, or a
    /// hash collision in the stack map); their pc is still counted.
    pub stack_failures: u64,
    /// Ticks lost because the sample table was full.
    pub dropped: u64,
}

/// A sampling run: the samples, most frequent first, and the kernel's counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SampleRun {
    pub samples: Vec<StackSample>,
    pub stats: SampleStats,
}

fn map_error(map: &'static str, e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Map { map, reason: e.to_string() }
}

fn map_mut<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut Map, CaptureError> {
    ebpf.map_mut(name).ok_or_else(|| map_error(name, "missing from the eBPF object"))
}

/// Counter totals over all CPUs, by slot.
fn counters(ebpf: &mut Ebpf) -> Result<[u64; sample_counters::SLOTS as usize], CaptureError> {
    let map: PerCpuArray<&mut MapData, u64> =
        map_mut(ebpf, COUNTERS)?.try_into().map_err(|e| map_error(COUNTERS, e))?;
    let mut totals = [0u64; sample_counters::SLOTS as usize];
    for (slot, total) in totals.iter_mut().enumerate() {
        let values = map.get(&(slot as u32), 0).map_err(|e| map_error(COUNTERS, e))?;
        *total = values.iter().sum();
    }
    Ok(totals)
}

/// Reads the samples of `tid` with their stacks (any other thread's are discarded; tid 0, which is
/// never sampled, only clears), and empties both maps so the next run starts clean and the stack
/// map's fixed number of slots is not used up by old runs.
fn drain(ebpf: &mut Ebpf, tid: u32) -> Result<Vec<StackSample>, CaptureError> {
    let counts: Vec<(SampleKey, u32)> = {
        let mut map: HashMap<&mut MapData, SampleKey, u32> =
            map_mut(ebpf, SAMPLES)?.try_into().map_err(|e| map_error(SAMPLES, e))?;
        let entries: Vec<(SampleKey, u32)> = map.iter().filter_map(Result::ok).collect();
        for (key, _) in &entries {
            // Gone already is as good as removed.
            let _ = map.remove(key);
        }
        entries
    };
    let mut stacks: StackTraceMap<&mut MapData> =
        map_mut(ebpf, STACKS)?.try_into().map_err(|e| map_error(STACKS, e))?;
    let mut merged: StdHashMap<(u64, Vec<u64>), u32> = StdHashMap::new();
    for (key, count) in counts.iter().filter(|(key, _)| key.tid == tid) {
        let stack = match u32::try_from(key.stack_id) {
            Ok(id) => stacks.get(&id, 0).map(|s| s.frames().iter().map(|f| f.ip).collect()).unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let slot = merged.entry((key.ip, stack)).or_default();
        *slot = slot.saturating_add(*count);
    }
    let ids: Vec<u32> = stacks.stack_ids().filter_map(Result::ok).collect();
    for id in ids {
        let _ = stacks.remove(&id);
    }
    let mut samples: Vec<StackSample> =
        merged.into_iter().map(|((ip, stack), count)| StackSample { ip, stack, count }).collect();
    samples.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.ip.cmp(&b.ip)).then_with(|| a.stack.cmp(&b.stack)));
    Ok(samples)
}

fn attach_error(tid: u32, reason: impl std::fmt::Display) -> CaptureError {
    CaptureError::Attach {
        program: PROGRAM.into(),
        target: format!("cpu-clock of thread {tid}"),
        reason: reason.to_string(),
    }
}

/// The kernel refuses sampling frequencies above this sysctl with a bare EINVAL.
fn max_sample_rate() -> Option<u64> {
    crate::proc::sysctl("kernel.perf_event_max_sample_rate")?.parse().ok()
}

impl Probes {
    /// Samples thread `tid`'s user stacks `hz` times per second of its CPU time for `duration`,
    /// most frequent first. The thread is neither stopped nor ptraced: a software cpu-clock event
    /// fires only while it runs, so a thread that is blocked the whole time yields no samples.
    /// Blocks the caller for `duration` (from async code, call it on a blocking thread).
    pub fn sample_user_stacks(
        &mut self,
        tid: u32,
        duration: Duration,
        hz: u64,
    ) -> Result<Vec<StackSample>, CaptureError> {
        Ok(self.sample_thread(tid, duration, hz)?.samples)
    }

    /// As [`Probes::sample_user_stacks`], with the kernel's counts of user- and kernel-mode ticks
    /// and of what it could not record.
    pub fn sample_thread(&mut self, tid: u32, duration: Duration, hz: u64) -> Result<SampleRun, CaptureError> {
        // pid 0 would mean "the calling process" to perf_event_open.
        if tid == 0 {
            return Err(attach_error(tid, "thread id 0 is not a thread"));
        }
        if hz == 0 {
            return Err(attach_error(tid, "the sampling frequency must be at least 1 Hz"));
        }
        if let Some(max) = max_sample_rate().filter(|max| hz > *max) {
            return Err(attach_error(
                tid,
                format!("{hz} Hz is above kernel.perf_event_max_sample_rate ({max}); sample less often"),
            ));
        }
        let ebpf = &mut self.ebpf;
        // Leftovers of a run that failed half-way would be counted as this thread's.
        drain(ebpf, 0)?;
        let before = counters(ebpf)?;

        let program: &mut PerfEvent = ebpf
            .program_mut(PROGRAM)
            .ok_or_else(|| CaptureError::Load(format!("program {PROGRAM} missing from the eBPF object")))?
            .try_into()
            .map_err(|e: ProgramError| CaptureError::Load(e.to_string()))?;
        // Loaded on first use only, so captures that never sample never pay the verifier for it.
        if program.fd().is_err() {
            program.load().map_err(|e| load_error(PROGRAM, e))?;
        }
        let link = program
            .attach(
                PerfEventConfig::Software(SoftwareEvent::CpuClock),
                PerfEventScope::OneProcess { pid: tid, cpu: None },
                SamplePolicy::Frequency(hz),
                false,
            )
            .map_err(|e| attach_error(tid, e))?;
        std::thread::sleep(duration);
        // Closing the event stops new ticks before the maps are read.
        program.detach(link).map_err(|e| attach_error(tid, format!("detaching: {e}")))?;

        let after = counters(ebpf)?;
        let delta = |slot: u32| after[slot as usize].saturating_sub(before[slot as usize]);
        let stats = SampleStats {
            user_mode: delta(SAMPLED_USER),
            kernel_mode: delta(SAMPLED_KERNEL),
            stack_failures: delta(STACK_FAILED),
            dropped: delta(SAMPLES_FULL),
        };
        Ok(SampleRun { samples: drain(ebpf, tid)?, stats })
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::{BufRead, BufReader},
        path::Path,
        process::{Child, Command, Stdio},
        time::Duration,
    };

    use super::*;
    use crate::{
        capture::{probes::DEFAULT_BUFFER_SIZE, tracefs},
        hang::symbols::{function_frames, sampled_stacks, top_functions, ProcessSymbols},
    };

    #[test]
    fn leaf_falls_back_to_the_stack_for_kernel_mode_samples() {
        let user = StackSample { ip: 0x10, stack: vec![0x20, 0x30], count: 1 };
        let kernel = StackSample { ip: 0, stack: vec![0x20, 0x30], count: 1 };
        let nothing = StackSample { ip: 0, stack: vec![], count: 1 };
        assert_eq!(user.leaf(), Some(0x10));
        assert_eq!(kernel.leaf(), Some(0x20));
        assert_eq!(nothing.leaf(), None);
    }

    /// Kills and reaps the workload however the test ends.
    struct Workload(Child);

    impl Drop for Workload {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn build_spin_named(dir: &Path) -> std::path::PathBuf {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/workloads/spin_named.c");
        let binary = dir.join("spin_named");
        let status = Command::new("cc")
            .args(["-O2", "-g", "-pthread", "-o"])
            .arg(&binary)
            .arg(&source)
            .status()
            .expect("run cc");
        assert!(status.success(), "cc failed on {}", source.display());
        binary
    }

    /// Reads `pid=<n>` and `spinner_tid=<n>` from the workload's first line.
    fn read_ids(child: &mut Child) -> (u32, u32) {
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line).expect("read workload line");
        let field = |name: &str| -> u32 {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
        };
        (field("pid"), field("spinner_tid"))
    }

    /// Waits until `tid` sits in a syscall (the pthread_join futex wait), so its user stack is
    /// readable from /proc/<pid>/task/<tid>/syscall.
    fn wait_blocked(pid: u32, tid: u32) {
        for _ in 0..200 {
            if crate::proc::task::current_syscall(pid, tid).is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("thread {tid} never blocked in a syscall");
    }

    #[test]
    fn sampling_a_spinning_thread_names_its_function_and_the_joiner_stack_reaches_main() {
        // SAFETY: no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: loading eBPF programs and perf events needs root");
            return;
        }
        if let Err(e) = tracefs::ensure_mounted() {
            eprintln!("skipped: {e}");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let binary = build_spin_named(dir.path());
        let mut workload = Workload(Command::new(&binary).stdout(Stdio::piped()).spawn().expect("start spin_named"));
        let (pid, spinner) = read_ids(&mut workload.0);
        assert_eq!(pid, workload.0.id());

        let mut probes = Probes::load(DEFAULT_BUFFER_SIZE as u32, 256 * 1024).expect("load probes");
        let run = probes.sample_thread(spinner, Duration::from_secs(1), 99).expect("sample the spinner");
        let total: u32 = run.samples.iter().map(|s| s.count).sum();
        eprintln!("stats {:?}; {total} samples in {} distinct stacks", run.stats, run.samples.len());
        let (stacks, _) = sampled_stacks(&ProcessSymbols::read(pid), &run.samples);
        let top = top_functions(&stacks, 5);
        eprintln!("top functions: {top:?}");
        assert!(total >= 20, "too few samples of a thread spinning for 1 s at 99 Hz: {total}");
        let (name, count) = &top[0];
        assert_eq!(name, "spin_forever_in_named_function");
        assert!(*count * 2 > total, "{name} has only {count} of {total} samples");

        // A second run on the same probes must start from empty maps.
        let again = probes.sample_thread(spinner, Duration::from_millis(200), 99).expect("sample again");
        let again_total: u32 = again.samples.iter().map(|s| s.count).sum();
        assert!(again_total < total, "the second, shorter run saw {again_total} >= {total} samples");

        wait_blocked(pid, pid);
        let frames = function_frames(&ProcessSymbols::read(pid), pid, None, 32);
        eprintln!("main thread frames: {frames:#?}");
        assert!(
            frames.iter().any(|f| f.function.as_deref() == Some("main")),
            "main missing from the blocked main thread's stack: {frames:?}"
        );
    }
}
