//! Every map the programs share with userspace, and the filter that decides what is tracked.
use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    macros::map,
    maps::{Array, HashMap, PerCpuArray, RingBuf},
};
use observer_common::{
    kind,
    maps::{filters, ring_fill},
    syscalls::TABLE_SIZE,
    InFlight, ThreadProgress, PROGRESS_SLOTS,
};

/// Default; userspace sets the real size from `--buffer-size` before loading.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(4 * 1024 * 1024, 0);

/// Tracked processes (tgid -> 1). Seeded by userspace, extended on fork, cleaned when the group dies.
/// Userspace lists it; the hot path asks `TRACKED_BY_PID` instead.
#[map]
pub static TRACKED: HashMap<u32, u8> = HashMap::with_max_entries(16384, 0);

/// The same set indexed by pid (sized to kernel.pid_max by the loader): every watched syscall of
/// every process asks "is this process tracked?", and an array answers with one inlined load
/// where a hash map hashes and walks a bucket.
#[map]
pub static TRACKED_BY_PID: Array<u8> = Array::with_max_entries(32768, 0);

/// Marks a process tracked or not, in both views.
#[inline(always)]
pub fn set_tracked(tgid: u32, tracked: bool) {
    if tracked {
        let _ = TRACKED.insert(tgid, 1, 0);
    } else {
        let _ = TRACKED.remove(tgid);
    }
    if let Some(slot) = TRACKED_BY_PID.get_ptr_mut(tgid) {
        // SAFETY: a byte of an array map; concurrent writers write the same meaning.
        unsafe { *slot = u8::from(tracked) };
    }
    // The CPU's stage remembers whether its thread is tracked: the current thread may be the one
    // whose process just changed.
    crate::stage::let_go();
}

/// Threads of tracked processes (tid -> tgid), so signals aimed at a thread can be matched.
#[map]
pub static TASKS: HashMap<u32, u32> = HashMap::with_max_entries(65536, 0);

/// Syscalls in progress, by tid: an array slot per tid below its size (no hashing, no lock on the
/// hottest path), a hash map for larger tids. Userspace reads both to say what a thread is
/// blocked in.
#[map]
pub static IN_FLIGHT_BY_TID: Array<InFlight> = Array::with_max_entries(32768, 0);
#[map]
pub static IN_FLIGHT: HashMap<u32, InFlight> = HashMap::with_max_entries(65536, 0);

/// Parks a syscall in progress; false when there is no room.
#[inline(always)]
pub fn in_flight_put(tid: u32, entry: &InFlight) -> bool {
    match IN_FLIGHT_BY_TID.get_ptr_mut(tid) {
        Some(slot) => {
            // SAFETY: the slot of this tid; only the thread itself (or its exit) writes it.
            unsafe { *slot = InFlight { live: 1, ..*entry } };
            true
        }
        None => IN_FLIGHT.insert(tid, InFlight { live: 1, ..*entry }, 0).is_ok(),
    }
}

/// The syscall `tid` is in, if any.
#[inline(always)]
pub fn in_flight_get(tid: u32) -> Option<InFlight> {
    match IN_FLIGHT_BY_TID.get_ptr(tid) {
        // SAFETY: as above.
        Some(slot) => Some(unsafe { *slot }).filter(|e| e.live != 0),
        // SAFETY: a hash value, copied out at once.
        None => IN_FLIGHT.get_ptr(tid).map(|e| unsafe { *e }),
    }
}

/// Takes the syscall `tid` is in out of the table.
#[inline(always)]
pub fn in_flight_take(tid: u32) -> Option<InFlight> {
    match IN_FLIGHT_BY_TID.get_ptr_mut(tid) {
        Some(slot) => {
            // SAFETY: as above. The flag first: most slots looked at are empty.
            if unsafe { (*slot).live } == 0 {
                return None;
            }
            // SAFETY: as above.
            let entry = unsafe { *slot };
            // SAFETY: as above.
            unsafe { (*slot).live = 0 };
            Some(entry)
        }
        None => {
            // SAFETY: a hash value, copied out before removal.
            let entry = IN_FLIGHT.get_ptr(tid).map(|e| unsafe { *e })?;
            let _ = IN_FLIGHT.remove(tid);
            Some(entry)
        }
    }
}

/// Syscall number -> `syscall_bits` (argument count and behaviour). Zero: not watched.
#[map]
pub static SYSCALL_TABLE: Array<u16> = Array::with_max_entries(TABLE_SIZE, 0);

/// Per-thread syscall counters of tracked processes, by `tid % PROGRESS_SLOTS` (added to by
/// `stage`): what the watchdog judges progress by, independent of how far the reader has drained
/// the ring buffer.
#[map]
pub static THREAD_PROGRESS: Array<ThreadProgress> = Array::with_max_entries(PROGRESS_SLOTS, 0);

/// Records lost by kind (failed ring-buffer reservations, unreadable tracepoint fields); index 0
/// counts in-flight table overflows.
#[map]
pub static DROPPED: PerCpuArray<u64> = PerCpuArray::with_max_entries(kind::COUNT, 0);

/// Records submitted by kind, so userspace can reconcile what it read with what was sent.
#[map]
pub static SUBMITTED: PerCpuArray<u64> = PerCpuArray::with_max_entries(kind::COUNT, 0);

/// Per CPU: bytes pending in the ring buffer as its producer last looked (a fill gauge for
/// metrics), and records it wrote since.
#[map]
pub static RING_FILL: PerCpuArray<u64> = PerCpuArray::with_max_entries(ring_fill::SLOTS, 0);

/// Syscall number -> `host_bits`: what untracked processes report in host-wide mode.
#[map]
pub static HOST_TABLE: Array<u8> = Array::with_max_entries(TABLE_SIZE, 0);

/// Host-wide filters of `observer watch`: a process whose new image matches one of them is
/// tracked in full (with its descendants). Comm, uid and cgroup-v2 id.
#[map]
pub static COMM_FILTER: HashMap<[u8; 16], u8> = HashMap::with_max_entries(64, 0);
#[map]
pub static UID_FILTER: HashMap<u32, u8> = HashMap::with_max_entries(64, 0);
#[map]
pub static CGROUP_FILTER: HashMap<u64, u8> = HashMap::with_max_entries(64, 0);

/// Non-zero: `observer watch` — also stream lifecycle, signals and failures of every process.
#[unsafe(no_mangle)]
static HOST_WIDE: u8 = 0;

/// Non-zero: the syscall programs return at their first instruction. Only the benchmark sets it,
/// to measure what the hooks cost by themselves (the floor no program can go under).
#[unsafe(no_mangle)]
static HOOKS_ONLY: u8 = 0;

#[inline(always)]
pub fn hooks_only() -> bool {
    // SAFETY: a read-only global patched by the loader; the verifier drops the branch it never takes.
    unsafe { core::ptr::read_volatile(&HOOKS_ONLY) != 0 }
}

/// Which filter maps hold entries (`observer_common::maps::filters` bits), so empty ones cost nothing.
#[unsafe(no_mangle)]
static FILTERS: u8 = 0;

pub fn host_wide() -> bool {
    // SAFETY: a read-only global patched by the loader.
    unsafe { core::ptr::read_volatile(&HOST_WIDE) != 0 }
}

/// Whether the current task matches a host-wide filter (checked when it execs).
pub fn matches_filters() -> bool {
    // SAFETY: a read-only global patched by the loader.
    let active = unsafe { core::ptr::read_volatile(&FILTERS) };
    if active & filters::COMM != 0 {
        if let Ok(comm) = aya_ebpf::helpers::bpf_get_current_comm() {
            if COMM_FILTER.get_ptr(comm).is_some() {
                return true;
            }
        }
    }
    if active & filters::UID != 0 {
        let uid = aya_ebpf::helpers::bpf_get_current_uid_gid() as u32;
        if UID_FILTER.get_ptr(uid).is_some() {
            return true;
        }
    }
    if active & filters::CGROUP != 0 {
        // SAFETY: helper without preconditions.
        let cgroup = unsafe { aya_ebpf::helpers::bpf_get_current_cgroup_id() };
        if CGROUP_FILTER.get_ptr(cgroup).is_some() {
            return true;
        }
    }
    false
}

/// Pending bytes in the ring buffer at which a submit wakes the reader; below it the reader's own
/// poll timer collects records (a wake-up per record more than doubles the cost of a syscall).
#[unsafe(no_mangle)]
static WAKEUP_BYTES: u64 = 256 * 1024;

pub fn wakeup_bytes() -> u64 {
    // SAFETY: a read-only global patched by the loader; volatile so it is not constant-folded.
    unsafe { core::ptr::read_volatile(&WAKEUP_BYTES) }
}

/// Current task as (tid, tgid).
#[inline(always)]
pub fn current_ids() -> (u32, u32) {
    let id = bpf_get_current_pid_tgid();
    (id as u32, (id >> 32) as u32)
}

#[inline(always)]
pub fn is_tracked(tgid: u32) -> bool {
    TRACKED_BY_PID.get(tgid).is_some_and(|t| *t != 0)
}

#[inline(always)]
pub fn bump(map: &PerCpuArray<u64>, index: u32) {
    add(map, index, 1);
}

#[inline(always)]
pub fn add(map: &PerCpuArray<u64>, index: u32, n: u64) {
    if let Some(counter) = map.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU while the program runs.
        unsafe { *counter += n };
    }
}
