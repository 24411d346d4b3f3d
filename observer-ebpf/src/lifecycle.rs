//! `sched/sched_process_{fork,exec,exit}`: grows and shrinks the tracked set in the kernel and
//! records each process-lifecycle step of tracked tasks.
use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_ktime_get_boot_ns, bpf_probe_read_kernel_str_bytes},
    macros::tracepoint,
    programs::TracePointContext,
};
use observer_common::{
    flags,
    syscall_bits::{CLONE, CLONE3},
    syscalls::CLONE_THREAD,
    tracepoint_fields::{
        CGATTACH_DST_ID, CGATTACH_DST_LEVEL, CGATTACH_DST_PATH_LOC, CGATTACH_DST_ROOT, CGATTACH_PID, EXEC_FILENAME_LOC,
        EXEC_OLD_PID, EXIT_GROUP_DEAD, FORK_CHILD_PID,
    },
    CgroupAttachEvent, ExecEvent, ExitEvent, ForkEvent,
};

use crate::{
    maps::{
        current_ids, host_wide, in_flight_get, in_flight_put, in_flight_take, is_tracked, matches_filters, set_tracked,
        SYSCALL_TABLE, TASKS,
    },
    output::{emit, header, lost},
    syscalls::record,
};

// A field that cannot be read loses the event: counted with the records lost of its kind.

#[tracepoint]
pub fn sched_process_fork(ctx: TracePointContext) -> u32 {
    if try_fork(&ctx).is_err() {
        lost::<ForkEvent>();
    }
    0
}

#[tracepoint]
pub fn sched_process_exec(ctx: TracePointContext) -> u32 {
    if try_exec(&ctx).is_err() {
        lost::<ExecEvent>();
    }
    0
}

#[tracepoint]
pub fn cgroup_attach_task(ctx: TracePointContext) -> u32 {
    if try_cgroup_attach(&ctx).is_err() {
        lost::<CgroupAttachEvent>();
    }
    0
}

#[tracepoint]
pub fn sched_process_exit(ctx: TracePointContext) -> u32 {
    if try_exit(&ctx).is_err() {
        lost::<ExitEvent>();
    }
    0
}

/// Whether the clone/clone3 the parent is inside asked for a thread. The tracepoint fires in the
/// parent before the child is woken, so the child cannot run untracked.
fn parent_is_making_thread(parent_tid: u32) -> bool {
    let Some(entry) = in_flight_get(parent_tid) else {
        return false;
    };
    let bits = SYSCALL_TABLE.get(entry.nr).copied().unwrap_or(0);
    let clone_flags = if bits & CLONE != 0 {
        entry.args[0]
    } else if bits & CLONE3 != 0 {
        entry.aux
    } else {
        0
    };
    clone_flags & CLONE_THREAD != 0
}

fn try_fork(ctx: &TracePointContext) -> Result<(), i32> {
    let (tid, tgid) = current_ids();
    let tracked = is_tracked(tgid);
    if !tracked && !host_wide() {
        return Ok(());
    }
    // SAFETY: offset checked against the format file.
    let child_tid: i32 = unsafe { ctx.read_at(FORK_CHILD_PID)? };
    let child_tid = child_tid as u32;
    let thread = parent_is_making_thread(tid);
    let child_tgid = if thread { tgid } else { child_tid };
    if tracked {
        if !thread {
            set_tracked(child_tid, true);
        }
        let _ = TASKS.insert(child_tid, child_tgid, 0);
    }
    let mut flags = if thread { flags::THREAD } else { 0 };
    if !tracked {
        flags |= flags::HOST;
    }
    let event = ForkEvent {
        header: header::<ForkEvent>(flags, tid, tgid),
        child_tid,
        child_tgid,
        parent_comm: bpf_get_current_comm().unwrap_or_default(),
    };
    emit(&event);
    Ok(())
}

/// A tracked process moved into a cgroup. Moving a process moves each of its threads; the leader's
/// move (its tid is the tgid) stands for the process.
fn try_cgroup_attach(ctx: &TracePointContext) -> Result<(), i32> {
    // SAFETY: offsets checked against the format file.
    let pid: i32 = unsafe { ctx.read_at(CGATTACH_PID)? };
    let pid = pid as u32;
    if !is_tracked(pid) {
        return Ok(());
    }
    let mut event = CgroupAttachEvent {
        header: header::<CgroupAttachEvent>(0, pid, pid),
        root: unsafe { ctx.read_at(CGATTACH_DST_ROOT)? },
        level: unsafe { ctx.read_at(CGATTACH_DST_LEVEL)? },
        id: unsafe { ctx.read_at(CGATTACH_DST_ID)? },
        ..CgroupAttachEvent::default()
    };
    // __data_loc: low 16 bits offset from the record start, high 16 bits length.
    let loc: u32 = unsafe { ctx.read_at(CGATTACH_DST_PATH_LOC)? };
    // SAFETY: the offset points inside this tracepoint record.
    let src = unsafe { (ctx_ptr(ctx) as *const u8).add((loc & 0xffff) as usize) };
    let _ = unsafe { bpf_probe_read_kernel_str_bytes(src, &mut event.path) };
    emit(&event);
    Ok(())
}

fn try_exec(ctx: &TracePointContext) -> Result<(), i32> {
    let (tid, tgid) = current_ids();
    let mut host = 0;
    if !is_tracked(tgid) {
        if !host_wide() {
            return Ok(());
        }
        if matches_filters() {
            // A process of interest from here on: track it (and, through fork, its descendants).
            set_tracked(tgid, true);
            let _ = TASKS.insert(tid, tgid, 0);
        } else {
            host = flags::HOST;
        }
    }
    // SAFETY: offsets checked against the format file.
    let old_tid: i32 = unsafe { ctx.read_at(EXEC_OLD_PID)? };
    let old_tid = old_tid as u32;
    if old_tid != tid {
        // A non-leader thread exec'd and took over the leader's tid: its pending execve moves too.
        if let Some(entry) = in_flight_take(old_tid) {
            let _ = in_flight_put(tid, &entry);
        }
        let _ = TASKS.remove(old_tid);
    }
    let mut event = ExecEvent {
        header: header::<ExecEvent>(host, tid, tgid),
        old_tid,
        comm: bpf_get_current_comm().unwrap_or_default(),
        ..ExecEvent::default()
    };
    // __data_loc: low 16 bits offset from the record start, high 16 bits length.
    let loc: u32 = unsafe { ctx.read_at(EXEC_FILENAME_LOC)? };
    let offset = (loc & 0xffff) as usize;
    // SAFETY: the offset points inside this tracepoint record.
    let src = unsafe { (ctx_ptr(ctx) as *const u8).add(offset) };
    let _ = unsafe { bpf_probe_read_kernel_str_bytes(src, &mut event.filename) };
    emit(&event);
    Ok(())
}

fn ctx_ptr(ctx: &TracePointContext) -> *mut core::ffi::c_void {
    use aya_ebpf::EbpfContext;
    ctx.as_ptr()
}

fn try_exit(ctx: &TracePointContext) -> Result<(), i32> {
    let (tid, tgid) = current_ids();
    if !is_tracked(tgid) {
        if host_wide() {
            // SAFETY: offset checked against the format file.
            let group_dead: u8 = unsafe { ctx.read_at(EXIT_GROUP_DEAD)? };
            let mut flags = flags::HOST;
            if group_dead != 0 {
                flags |= flags::GROUP_DEAD;
            }
            let event = ExitEvent {
                header: header::<ExitEvent>(flags, tid, tgid),
                comm: bpf_get_current_comm().unwrap_or_default(),
            };
            emit(&event);
        }
        return Ok(());
    }
    // A thread killed inside a syscall never reaches sys_exit: report how long it had been there.
    if let Some(entry) = in_flight_take(tid) {
        // SAFETY: helper without preconditions.
        let now = unsafe { bpf_ktime_get_boot_ns() };
        emit(&record(tid, &entry, flags::UNFINISHED, 0, now.saturating_sub(entry.enter_ns)));
    }
    // SAFETY: offset checked against the format file.
    let group_dead: u8 = unsafe { ctx.read_at(EXIT_GROUP_DEAD)? };
    let _ = TASKS.remove(tid);
    let event = ExitEvent {
        header: header::<ExitEvent>(if group_dead != 0 { flags::GROUP_DEAD } else { 0 }, tid, tgid),
        comm: bpf_get_current_comm().unwrap_or_default(),
    };
    emit(&event);
    if group_dead != 0 {
        set_tracked(tgid, false);
    }
    Ok(())
}
