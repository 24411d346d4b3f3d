//! Loading the embedded eBPF object, filling its syscall table, attaching every program, and the
//! handles userspace keeps on its maps (tracked set, in-flight table, counters, ring buffer).
use aya::{
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
    programs::{
        tp_btf::BtfTracePointLink, BtfTracePoint, ProgramError, RawTracePoint, RawTracePointRunOptions, TestRun,
        TracePoint,
    },
    Btf, Ebpf, EbpfLoader,
};
use observer_common::{
    host_bits, kind,
    maps::{filters, globals, names, programs, ring_fill, tracepoints},
    syscall_bits,
    syscalls::{Syscall, HOST_WIDE_ERRORS, TABLE_SIZE, WATCHED},
    InFlight, ThreadProgress, COUNTER_INFLIGHT_FULL, PROGRESS_SLOTS,
};

use super::CaptureError;

/// The eBPF object, built by observer's build script from the observer-ebpf crate; empty in a build
/// made with `OBSERVER_SKIP_EBPF=1`.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/observer"));

/// Set to 1, the syscall programs are attached but return at their first instruction: what the
/// benchmark runs to measure the cost of the hooks alone. Nothing else should set it.
pub const HOOKS_ONLY_ENV: &str = "OBSERVER_BENCH_HOOKS_ONLY";

/// Ring-buffer size used when `--buffer-size` is not given.
pub const DEFAULT_BUFFER_SIZE: u64 = 16 * 1024 * 1024;

/// Ring-buffer sizes must be a power of two and a whole number of pages.
pub fn validate_buffer_size(bytes: u64) -> Result<u32, CaptureError> {
    if bytes >= 4096 && bytes.is_power_of_two() && bytes <= 1 << 30 {
        Ok(bytes as u32)
    } else {
        Err(CaptureError::BufferSize(bytes))
    }
}

/// What the kernel side counted, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records submitted to the ring buffer, by kind id.
    pub submitted: Vec<u64>,
    /// Records lost (ring buffer full, or a tracepoint field the kernel would not read), by kind id.
    pub dropped: Vec<u64>,
    /// Syscall entries not recorded because the in-flight table was full.
    pub inflight_full: u64,
}

impl Counters {
    pub fn submitted_total(&self) -> u64 {
        self.submitted.iter().skip(1).sum()
    }
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().skip(1).sum()
    }
}

/// The loaded and attached programs and the maps userspace needs.
pub struct Probes {
    // Dropping `Ebpf` detaches and unloads every program. Programs attached only on demand (the
    // stack sampler's perf_event program) are loaded from it by `capture::sampler`, never by `load`.
    pub(super) ebpf: Ebpf,
    tracked: HashMap<MapData, u32, u8>,
    tracked_by_pid: Array<MapData, u8>,
    tasks: HashMap<MapData, u32, u32>,
    in_flight: HashMap<MapData, u32, InFlight>,
    in_flight_by_tid: Array<MapData, InFlight>,
    dropped: PerCpuArray<MapData, u64>,
    submitted: PerCpuArray<MapData, u64>,
    ring_fill: PerCpuArray<MapData, u64>,
    ring_size: u32,
    ring: Option<RingBuf<MapData>>,
    // Held so its fd stays open while programs that reference it are loaded.
    _syscall_table: Array<MapData, u16>,
    thread_progress: Array<MapData, ThreadProgress>,
    _filters: Filters,
    /// Every attachment; dropping one detaches it.
    links: Vec<Box<dyn Send>>,
    /// The CPUs whose stages `flush_stages` writes out, and when it last did.
    cpus: Vec<u32>,
    last_flush: Option<std::time::Instant>,
    /// Which build of the syscall programs runs, and why not the BTF one when it does not.
    syscall_hooks: String,
    /// Fault addresses need the kernel's BTF; without it captures lack only `si_addr` (and the
    /// syscall programs run on raw tracepoints).
    fault_link: Result<BtfTracePointLink, String>,
}

fn attach_fault_program(ebpf: &mut Ebpf, btf: &Btf) -> Result<BtfTracePointLink, String> {
    let name = programs::SIGNAL_FAULT;
    let program: &mut BtfTracePoint = program_named(ebpf, name).map_err(|e| e.to_string())?;
    program.load(tracepoints::SIGNAL_GENERATE, btf).map_err(|e| load_error(name, e).to_string())?;
    let id = program.attach().map_err(|e| e.to_string())?;
    program.take_link(id).map_err(|e| e.to_string())
}

/// The BTF-typed syscall programs, both or neither (a half-attached pair would pair nothing).
fn attach_btf_syscall_programs(ebpf: &mut Ebpf, btf: &Btf, links: &mut Vec<Box<dyn Send>>) -> Result<(), String> {
    let mut attached: Vec<Box<dyn Send>> = Vec::new();
    for (name, function) in [(programs::SYS_ENTER, tracepoints::SYS_ENTER), (programs::SYS_EXIT, tracepoints::SYS_EXIT)]
    {
        let program: &mut BtfTracePoint = program_named(ebpf, name).map_err(|e| e.to_string())?;
        program.load(function, btf).map_err(|e| load_error(name, e).to_string())?;
        let id = program.attach().map_err(|e| e.to_string())?;
        attached.push(Box::new(program.take_link(id).map_err(|e| e.to_string())?));
    }
    links.append(&mut attached);
    Ok(())
}

impl Drop for Probes {
    /// Detaches every tracepoint at once: each detach waits for an RCU grace period (about 75 ms
    /// here); concurrent ones share it.
    fn drop(&mut self) {
        let links = std::mem::take(&mut self.links);
        std::thread::scope(|scope| {
            for link in links {
                scope.spawn(move || drop(link));
            }
        });
    }
}

fn take<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, CaptureError>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map =
        ebpf.take_map(name).ok_or(CaptureError::Map { map: name, reason: "missing from the eBPF object".into() })?;
    T::try_from(map).map_err(|e| CaptureError::Map { map: name, reason: e.to_string() })
}

/// The program called `name` in the object, as the program type it must be.
fn program_named<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, CaptureError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or_else(|| CaptureError::Load(format!("program {name} missing from the eBPF object")))?
        .try_into()
        .map_err(|e: ProgramError| CaptureError::Load(format!("{name}: {e}")))
}

pub(crate) fn load_error(program: &str, e: ProgramError) -> CaptureError {
    match e {
        ProgramError::LoadError { io_error, verifier_log } => CaptureError::Verifier {
            program: program.into(),
            reason: io_error.to_string(),
            log: verifier_log.to_string(),
        },
        other => CaptureError::Load(format!("{program}: {other}")),
    }
}

/// What the programs watch besides the tracked processes: nothing (`run`, `attach`), or every
/// process at low rate with filters that promote matching processes to full tracking (`watch`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostWide {
    pub enabled: bool,
    /// Command names (cut to 15 bytes, as the kernel keeps them).
    pub comms: Vec<String>,
    pub uids: Vec<u32>,
    /// cgroup v2 ids (the inode number of the cgroup directory).
    pub cgroups: Vec<u64>,
}

fn comm_key(name: &str) -> [u8; 16] {
    let mut key = [0u8; 16];
    let bytes = name.as_bytes();
    let n = bytes.len().min(15);
    key[..n].copy_from_slice(&bytes[..n]);
    key
}

fn fill<K: aya::Pod, V: aya::Pod>(
    ebpf: &mut Ebpf,
    name: &'static str,
    keys: impl IntoIterator<Item = K>,
    value: V,
) -> Result<HashMap<MapData, K, V>, CaptureError> {
    let mut map: HashMap<MapData, K, V> = take(ebpf, name)?;
    for key in keys {
        map.insert(key, value, 0).map_err(|e| CaptureError::Map { map: name, reason: e.to_string() })?;
    }
    Ok(map)
}

/// Filter maps held open for the life of the programs.
struct Filters {
    _host_table: Array<MapData, u8>,
    _comms: HashMap<MapData, [u8; 16], u8>,
    _uids: HashMap<MapData, u32, u8>,
    _cgroups: HashMap<MapData, u64, u8>,
}

impl Probes {
    /// Loads the programs with a ring buffer of `buffer_size` bytes and attaches all of them.
    /// Nothing is tracked yet: until `track` is called the programs only pay the filter miss.
    pub fn load(buffer_size: u32, wakeup_bytes: u64) -> Result<Self, CaptureError> {
        Self::load_with(buffer_size, wakeup_bytes, &HostWide::default())
    }

    /// As `load`, with host-wide streaming and filters (`observer watch`).
    pub fn load_with(buffer_size: u32, wakeup_bytes: u64, host: &HostWide) -> Result<Self, CaptureError> {
        if EBPF_OBJECT.is_empty() {
            return Err(CaptureError::NoEbpfObject);
        }
        if std::env::consts::ARCH != "x86_64" {
            return Err(CaptureError::Load(format!(
                "syscall arguments are read from x86-64 registers; this is {}",
                std::env::consts::ARCH
            )));
        }
        let host_wide: u8 = host.enabled.into();
        let mut active_filters = 0u8;
        for (bit, used) in [
            (filters::COMM, !host.comms.is_empty()),
            (filters::UID, !host.uids.is_empty()),
            (filters::CGROUP, !host.cgroups.is_empty()),
        ] {
            if used {
                active_filters |= bit;
            }
        }
        // One slot per possible pid (kernel.pid_max, at most 4 Mi).
        let pid_max: u32 = crate::proc::sysctl("kernel.pid_max").and_then(|s| s.parse().ok()).unwrap_or(4 << 20);
        let hooks_only: u8 = std::env::var_os(HOOKS_ONLY_ENV).is_some_and(|v| v == "1").into();
        if hooks_only != 0 {
            eprintln!("observer: {HOOKS_ONLY_ENV}=1: the syscall programs return at once and record nothing (benchmark floor)");
        }
        let mut ebpf = EbpfLoader::new()
            .map_max_entries(names::EVENTS, buffer_size)
            .map_max_entries(names::TRACKED_BY_PID, pid_max.clamp(1024, 4 << 20))
            // 80 bytes a slot: tids past 64 Ki go to the hash map instead.
            .map_max_entries(names::IN_FLIGHT_BY_TID, pid_max.clamp(1024, 1 << 16))
            .override_global(globals::WAKEUP_BYTES, &wakeup_bytes, true)
            .override_global(globals::HOST_WIDE, &host_wide, true)
            .override_global(globals::FILTERS, &active_filters, true)
            .override_global(globals::HOOKS_ONLY, &hooks_only, true)
            .load(EBPF_OBJECT)
            .map_err(|e| match e {
                aya::EbpfError::ProgramError(p) => load_error("(object)", p),
                other => CaptureError::Load(other.to_string()),
            })?;

        let mut table: Array<MapData, u16> = take(&mut ebpf, names::SYSCALL_TABLE)?;
        for sc in WATCHED {
            debug_assert!(sc.nr < TABLE_SIZE);
            table
                .set(sc.nr, sc.table_bits(), 0)
                .map_err(|e| CaptureError::Map { map: names::SYSCALL_TABLE, reason: e.to_string() })?;
        }

        let mut host_table: Array<MapData, u8> = take(&mut ebpf, names::HOST_TABLE)?;
        if host.enabled {
            for sc in WATCHED {
                let mut bits = 0;
                if HOST_WIDE_ERRORS.contains(&sc.call) {
                    bits |= host_bits::ERRORS;
                }
                if sc.call == Syscall::Mmap {
                    bits |= host_bits::STACK_MMAPS;
                }
                if sc.bits & syscall_bits::RLIMIT != 0 {
                    bits |= host_bits::LIMIT_SETS;
                }
                if matches!(sc.call, Syscall::Setsid | Syscall::Setpgid) {
                    bits |= host_bits::GROUP_CHANGES;
                }
                if bits != 0 {
                    host_table
                        .set(sc.nr, bits, 0)
                        .map_err(|e| CaptureError::Map { map: names::HOST_TABLE, reason: e.to_string() })?;
                }
            }
        }
        let filter_maps = Filters {
            _host_table: host_table,
            _comms: fill(&mut ebpf, names::COMM_FILTER, host.comms.iter().map(|c| comm_key(c)), 1u8)?,
            _uids: fill(&mut ebpf, names::UID_FILTER, host.uids.iter().copied(), 1u8)?,
            _cgroups: fill(&mut ebpf, names::CGROUP_FILTER, host.cgroups.iter().copied(), 1u8)?,
        };

        let mut links: Vec<Box<dyn Send>> = Vec::new();
        let btf = Btf::from_sys_fs().map_err(|e| format!("kernel BTF unavailable: {e}"));
        let syscall_programs = match &btf {
            Ok(btf) => attach_btf_syscall_programs(&mut ebpf, btf, &mut links),
            Err(why) => Err(why.clone()),
        };
        let syscall_hooks = match &syscall_programs {
            Ok(()) => "tp_btf sys_enter/sys_exit".to_string(),
            Err(why) => format!("raw_tp sys_enter/sys_exit ({why})"),
        };
        if syscall_programs.is_err() {
            // Without BTF the same programs run on raw tracepoints, reading registers through a
            // helper call (about 25 ns more per syscall).
            for (program, tracepoint) in
                [(programs::SYS_ENTER_RAW, tracepoints::SYS_ENTER), (programs::SYS_EXIT_RAW, tracepoints::SYS_EXIT)]
            {
                let raw: &mut RawTracePoint = program_named(&mut ebpf, program)?;
                raw.load().map_err(|e| load_error(program, e))?;
                let attach_error = |e: ProgramError| CaptureError::Attach {
                    program: program.into(),
                    target: format!("raw tracepoint {tracepoint}"),
                    reason: e.to_string(),
                };
                let id = raw.attach(tracepoint).map_err(attach_error)?;
                links.push(Box::new(raw.take_link(id).map_err(attach_error)?));
            }
        }
        for (program, category, tracepoint) in [
            (programs::SCHED_PROCESS_FORK, tracepoints::SCHED, tracepoints::SCHED_PROCESS_FORK),
            (programs::SCHED_PROCESS_EXEC, tracepoints::SCHED, tracepoints::SCHED_PROCESS_EXEC),
            (programs::SCHED_PROCESS_EXIT, tracepoints::SCHED, tracepoints::SCHED_PROCESS_EXIT),
            (programs::SIGNAL_GENERATE, tracepoints::SIGNAL, tracepoints::SIGNAL_GENERATE),
            (programs::SIGNAL_DELIVER, tracepoints::SIGNAL, tracepoints::SIGNAL_DELIVER),
            (programs::CGROUP_ATTACH_TASK, tracepoints::CGROUP, tracepoints::CGROUP_ATTACH_TASK),
        ] {
            let tp: &mut TracePoint = program_named(&mut ebpf, program)?;
            tp.load().map_err(|e| load_error(program, e))?;
            let attach_error = |e: ProgramError| CaptureError::Attach {
                program: program.into(),
                target: format!("{category}/{tracepoint}"),
                reason: e.to_string(),
            };
            let id = tp.attach(category, tracepoint).map_err(attach_error)?;
            links.push(Box::new(tp.take_link(id).map_err(attach_error)?));
        }
        // The stage flush runs on every kernel (a raw tracepoint; it reads no argument): without
        // it a thread's held syscall records could reach the ring after its later ones.
        let flush: &mut RawTracePoint = program_named(&mut ebpf, programs::STAGE_FLUSH)?;
        flush.load().map_err(|e| load_error(programs::STAGE_FLUSH, e))?;
        let attach_error = |e: ProgramError| CaptureError::Attach {
            program: programs::STAGE_FLUSH.into(),
            target: format!("raw tracepoint {}", tracepoints::SCHED_SWITCH),
            reason: e.to_string(),
        };
        let id = flush.attach(tracepoints::SCHED_SWITCH).map_err(attach_error)?;
        links.push(Box::new(flush.take_link(id).map_err(attach_error)?));
        let cpus = aya::util::online_cpus().unwrap_or_default();
        let fault_link = btf.and_then(|btf| attach_fault_program(&mut ebpf, &btf));

        Ok(Self {
            tracked: take(&mut ebpf, names::TRACKED)?,
            tracked_by_pid: take(&mut ebpf, names::TRACKED_BY_PID)?,
            tasks: take(&mut ebpf, names::TASKS)?,
            in_flight: take(&mut ebpf, names::IN_FLIGHT)?,
            in_flight_by_tid: take(&mut ebpf, names::IN_FLIGHT_BY_TID)?,
            dropped: take(&mut ebpf, names::DROPPED)?,
            submitted: take(&mut ebpf, names::SUBMITTED)?,
            ring_fill: take(&mut ebpf, names::RING_FILL)?,
            ring_size: buffer_size,
            ring: Some(take(&mut ebpf, names::EVENTS)?),
            links,
            cpus,
            last_flush: None,
            syscall_hooks,
            fault_link,
            _syscall_table: table,
            thread_progress: take(&mut ebpf, names::THREAD_PROGRESS)?,
            _filters: filter_maps,
            ebpf,
        })
    }

    /// Has every CPU write out the syscall records its stage holds (those of a thread still
    /// running there since its last context switch), at most once per `every` unless `every` is
    /// zero: the kernel runs the flush program on each CPU in turn (`BPF_PROG_TEST_RUN`).
    pub fn flush_stages(&mut self, every: std::time::Duration) {
        let now = std::time::Instant::now();
        if self.last_flush.is_some_and(|last| now.duration_since(last) < every) {
            return;
        }
        self.last_flush = Some(now);
        let Some(flush) = self.ebpf.program(programs::STAGE_FLUSH) else {
            return;
        };
        let Ok(flush) = <&RawTracePoint>::try_from(flush) else {
            return;
        };
        for &cpu in &self.cpus {
            // A kernel without CPU-pinned test runs (before 5.10) refuses; its stages are still
            // written out on every context switch.
            let _ = flush.test_run(RawTracePointRunOptions { cpu: Some(cpu), ..RawTracePointRunOptions::new() });
        }
    }

    /// Which build of the syscall programs is attached (`tp_btf ...`, or `raw_tp ... (why)`).
    pub fn syscall_hooks(&self) -> &str {
        &self.syscall_hooks
    }

    /// Why fault addresses are not captured, if they are not.
    pub fn fault_addresses_unavailable(&self) -> Option<&str> {
        self.fault_link.as_ref().err().map(String::as_str)
    }

    /// Starts tracking process `pid` (and, through the fork hook, everything it creates).
    pub fn track(&mut self, pid: u32) -> Result<(), CaptureError> {
        self.tracked.insert(pid, 1, 0).map_err(|e| CaptureError::Map { map: names::TRACKED, reason: e.to_string() })?;
        self.tracked_by_pid
            .set(pid, 1, 0)
            .map_err(|e| CaptureError::Map { map: names::TRACKED_BY_PID, reason: e.to_string() })?;
        self.tasks.insert(pid, pid, 0).map_err(|e| CaptureError::Map { map: names::TASKS, reason: e.to_string() })
    }

    /// Tracks one more thread of an already tracked process (attaching to a running tree).
    pub fn track_thread(&mut self, tid: u32, tgid: u32) -> Result<(), CaptureError> {
        self.tasks.insert(tid, tgid, 0).map_err(|e| CaptureError::Map { map: names::TASKS, reason: e.to_string() })
    }

    /// The ring buffer, handed to the live event source once.
    pub fn take_ring(&mut self) -> Option<RingBuf<MapData>> {
        self.ring.take()
    }

    /// Syscalls currently in progress, by tid.
    pub fn in_flight(&self) -> Vec<(u32, InFlight)> {
        let slots = self
            .in_flight_by_tid
            .iter()
            .enumerate()
            .filter_map(|(tid, e)| Some((tid as u32, e.ok()?)))
            .filter(|(_, e)| e.live != 0);
        slots.chain(self.in_flight.iter().filter_map(Result::ok)).collect()
    }

    /// The kernel's progress counters of threads `tids`, for those whose slot they own (a thread
    /// that made no syscall since the capture began, or whose slot another thread took, is left out).
    pub fn thread_progress(
        &self,
        tids: impl IntoIterator<Item = u32>,
    ) -> std::collections::BTreeMap<u32, ThreadProgress> {
        tids.into_iter()
            .filter_map(|tid| {
                let slot = self.thread_progress.get(&(tid & (PROGRESS_SLOTS - 1)), 0).ok()?;
                (slot.tid == tid).then_some((tid, slot))
            })
            .collect()
    }

    /// Processes currently tracked in the kernel.
    pub fn tracked(&self) -> Vec<u32> {
        self.tracked.keys().filter_map(Result::ok).collect()
    }

    /// Bytes pending in the ring buffer at the last submit, and the buffer's size.
    pub fn ring_fill(&self) -> (u64, u64) {
        let pending =
            self.ring_fill.get(&ring_fill::PENDING, 0).map(|v| v.iter().copied().max().unwrap_or(0)).unwrap_or(0);
        (pending, u64::from(self.ring_size))
    }

    /// The kernel's counts by kind; the compact syscall records count as syscall records.
    pub fn counters(&self) -> Counters {
        let sum = |map: &PerCpuArray<MapData, u64>, i: u32| map.get(&i, 0).map(|v| v.iter().sum()).unwrap_or(0);
        let by_kind = |map: &PerCpuArray<MapData, u64>| -> Vec<u64> {
            let mut counts: Vec<u64> =
                (0..kind::COUNT).map(|i| if i == COUNTER_INFLIGHT_FULL { 0 } else { sum(map, i) }).collect();
            counts[kind::SYSCALL as usize] += std::mem::take(&mut counts[kind::SHORT_SYSCALL as usize]);
            counts
        };
        Counters {
            submitted: by_kind(&self.submitted),
            dropped: by_kind(&self.dropped),
            inflight_full: sum(&self.dropped, COUNTER_INFLIGHT_FULL),
        }
    }
}

#[cfg(test)]
mod tests {
    use observer_common::maps::{globals, names, programs};

    use super::EBPF_OBJECT;

    /// Whether the object's string tables hold `name` as a whole symbol name.
    fn has_symbol(name: &str) -> bool {
        let needle: Vec<u8> = [&[0u8][..], name.as_bytes(), &[0u8]].concat();
        EBPF_OBJECT.windows(needle.len()).any(|w| w == needle.as_slice())
    }

    #[test]
    fn every_map_and_global_name_userspace_uses_is_in_the_object() {
        for name in [
            names::EVENTS,
            names::TRACKED,
            names::TRACKED_BY_PID,
            names::TASKS,
            names::IN_FLIGHT,
            names::IN_FLIGHT_BY_TID,
            names::SYSCALL_TABLE,
            names::HOST_TABLE,
            names::DROPPED,
            names::SUBMITTED,
            names::RING_FILL,
            programs::STAGE_FLUSH,
            names::COMM_FILTER,
            names::UID_FILTER,
            names::CGROUP_FILTER,
            names::SAMPLES,
            names::SAMPLE_STACKS,
            names::SAMPLE_COUNTERS,
            globals::WAKEUP_BYTES,
            globals::HOST_WIDE,
            globals::FILTERS,
            globals::HOOKS_ONLY,
        ] {
            assert!(has_symbol(name), "{name} is not a symbol of the eBPF object");
        }
        assert!(!has_symbol("NO_SUCH_MAP"));
    }
}
