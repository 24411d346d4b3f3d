//! Names and texts for the numbers syscalls and signals carry: errnos, signal numbers and `si_code`s
//! (x86_64 Linux values, spelled the way strace spells them).

/// Rows of errno, strace's name for it, glibc's `strerror` text. The ERESTART* codes never reach
/// userspace, so glibc has no text for them: theirs are the ones strace prints. The other kernel-internal codes
/// (515, 517, ...) have no text anywhere: strace prints `strerror`'s "Unknown error N" for them.
const ERRNOS: &[(i32, &str, Option<&str>)] = &[
    (1, "EPERM", Some("Operation not permitted")),
    (2, "ENOENT", Some("No such file or directory")),
    (3, "ESRCH", Some("No such process")),
    (4, "EINTR", Some("Interrupted system call")),
    (5, "EIO", Some("Input/output error")),
    (6, "ENXIO", Some("No such device or address")),
    (7, "E2BIG", Some("Argument list too long")),
    (8, "ENOEXEC", Some("Exec format error")),
    (9, "EBADF", Some("Bad file descriptor")),
    (10, "ECHILD", Some("No child processes")),
    (11, "EAGAIN", Some("Resource temporarily unavailable")),
    (12, "ENOMEM", Some("Cannot allocate memory")),
    (13, "EACCES", Some("Permission denied")),
    (14, "EFAULT", Some("Bad address")),
    (15, "ENOTBLK", Some("Block device required")),
    (16, "EBUSY", Some("Device or resource busy")),
    (17, "EEXIST", Some("File exists")),
    (18, "EXDEV", Some("Invalid cross-device link")),
    (19, "ENODEV", Some("No such device")),
    (20, "ENOTDIR", Some("Not a directory")),
    (21, "EISDIR", Some("Is a directory")),
    (22, "EINVAL", Some("Invalid argument")),
    (23, "ENFILE", Some("Too many open files in system")),
    (24, "EMFILE", Some("Too many open files")),
    (25, "ENOTTY", Some("Inappropriate ioctl for device")),
    (26, "ETXTBSY", Some("Text file busy")),
    (27, "EFBIG", Some("File too large")),
    (28, "ENOSPC", Some("No space left on device")),
    (29, "ESPIPE", Some("Illegal seek")),
    (30, "EROFS", Some("Read-only file system")),
    (31, "EMLINK", Some("Too many links")),
    (32, "EPIPE", Some("Broken pipe")),
    (33, "EDOM", Some("Numerical argument out of domain")),
    (34, "ERANGE", Some("Numerical result out of range")),
    (35, "EDEADLK", Some("Resource deadlock avoided")),
    (36, "ENAMETOOLONG", Some("File name too long")),
    (37, "ENOLCK", Some("No locks available")),
    (38, "ENOSYS", Some("Function not implemented")),
    (39, "ENOTEMPTY", Some("Directory not empty")),
    (40, "ELOOP", Some("Too many levels of symbolic links")),
    (42, "ENOMSG", Some("No message of desired type")),
    (43, "EIDRM", Some("Identifier removed")),
    (44, "ECHRNG", Some("Channel number out of range")),
    (45, "EL2NSYNC", Some("Level 2 not synchronized")),
    (46, "EL3HLT", Some("Level 3 halted")),
    (47, "EL3RST", Some("Level 3 reset")),
    (48, "ELNRNG", Some("Link number out of range")),
    (49, "EUNATCH", Some("Protocol driver not attached")),
    (50, "ENOCSI", Some("No CSI structure available")),
    (51, "EL2HLT", Some("Level 2 halted")),
    (52, "EBADE", Some("Invalid exchange")),
    (53, "EBADR", Some("Invalid request descriptor")),
    (54, "EXFULL", Some("Exchange full")),
    (55, "ENOANO", Some("No anode")),
    (56, "EBADRQC", Some("Invalid request code")),
    (57, "EBADSLT", Some("Invalid slot")),
    (59, "EBFONT", Some("Bad font file format")),
    (60, "ENOSTR", Some("Device not a stream")),
    (61, "ENODATA", Some("No data available")),
    (62, "ETIME", Some("Timer expired")),
    (63, "ENOSR", Some("Out of streams resources")),
    (64, "ENONET", Some("Machine is not on the network")),
    (65, "ENOPKG", Some("Package not installed")),
    (66, "EREMOTE", Some("Object is remote")),
    (67, "ENOLINK", Some("Link has been severed")),
    (68, "EADV", Some("Advertise error")),
    (69, "ESRMNT", Some("Srmount error")),
    (70, "ECOMM", Some("Communication error on send")),
    (71, "EPROTO", Some("Protocol error")),
    (72, "EMULTIHOP", Some("Multihop attempted")),
    (73, "EDOTDOT", Some("RFS specific error")),
    (74, "EBADMSG", Some("Bad message")),
    (75, "EOVERFLOW", Some("Value too large for defined data type")),
    (76, "ENOTUNIQ", Some("Name not unique on network")),
    (77, "EBADFD", Some("File descriptor in bad state")),
    (78, "EREMCHG", Some("Remote address changed")),
    (79, "ELIBACC", Some("Can not access a needed shared library")),
    (80, "ELIBBAD", Some("Accessing a corrupted shared library")),
    (81, "ELIBSCN", Some(".lib section in a.out corrupted")),
    (82, "ELIBMAX", Some("Attempting to link in too many shared libraries")),
    (83, "ELIBEXEC", Some("Cannot exec a shared library directly")),
    (84, "EILSEQ", Some("Invalid or incomplete multibyte or wide character")),
    (85, "ERESTART", Some("Interrupted system call should be restarted")),
    (86, "ESTRPIPE", Some("Streams pipe error")),
    (87, "EUSERS", Some("Too many users")),
    (88, "ENOTSOCK", Some("Socket operation on non-socket")),
    (89, "EDESTADDRREQ", Some("Destination address required")),
    (90, "EMSGSIZE", Some("Message too long")),
    (91, "EPROTOTYPE", Some("Protocol wrong type for socket")),
    (92, "ENOPROTOOPT", Some("Protocol not available")),
    (93, "EPROTONOSUPPORT", Some("Protocol not supported")),
    (94, "ESOCKTNOSUPPORT", Some("Socket type not supported")),
    (95, "EOPNOTSUPP", Some("Operation not supported")),
    (96, "EPFNOSUPPORT", Some("Protocol family not supported")),
    (97, "EAFNOSUPPORT", Some("Address family not supported by protocol")),
    (98, "EADDRINUSE", Some("Address already in use")),
    (99, "EADDRNOTAVAIL", Some("Cannot assign requested address")),
    (100, "ENETDOWN", Some("Network is down")),
    (101, "ENETUNREACH", Some("Network is unreachable")),
    (102, "ENETRESET", Some("Network dropped connection on reset")),
    (103, "ECONNABORTED", Some("Software caused connection abort")),
    (104, "ECONNRESET", Some("Connection reset by peer")),
    (105, "ENOBUFS", Some("No buffer space available")),
    (106, "EISCONN", Some("Transport endpoint is already connected")),
    (107, "ENOTCONN", Some("Transport endpoint is not connected")),
    (108, "ESHUTDOWN", Some("Cannot send after transport endpoint shutdown")),
    (109, "ETOOMANYREFS", Some("Too many references: cannot splice")),
    (110, "ETIMEDOUT", Some("Connection timed out")),
    (111, "ECONNREFUSED", Some("Connection refused")),
    (112, "EHOSTDOWN", Some("Host is down")),
    (113, "EHOSTUNREACH", Some("No route to host")),
    (114, "EALREADY", Some("Operation already in progress")),
    (115, "EINPROGRESS", Some("Operation now in progress")),
    (116, "ESTALE", Some("Stale file handle")),
    (117, "EUCLEAN", Some("Structure needs cleaning")),
    (118, "ENOTNAM", Some("Not a XENIX named type file")),
    (119, "ENAVAIL", Some("No XENIX semaphores available")),
    (120, "EISNAM", Some("Is a named type file")),
    (121, "EREMOTEIO", Some("Remote I/O error")),
    (122, "EDQUOT", Some("Disk quota exceeded")),
    (123, "ENOMEDIUM", Some("No medium found")),
    (124, "EMEDIUMTYPE", Some("Wrong medium type")),
    (125, "ECANCELED", Some("Operation canceled")),
    (126, "ENOKEY", Some("Required key not available")),
    (127, "EKEYEXPIRED", Some("Key has expired")),
    (128, "EKEYREVOKED", Some("Key has been revoked")),
    (129, "EKEYREJECTED", Some("Key was rejected by service")),
    (130, "EOWNERDEAD", Some("Owner died")),
    (131, "ENOTRECOVERABLE", Some("State not recoverable")),
    (132, "ERFKILL", Some("Operation not possible due to RF-kill")),
    (133, "EHWPOISON", Some("Memory page has hardware error")),
    (512, "ERESTARTSYS", Some("To be restarted if SA_RESTART is set")),
    (513, "ERESTARTNOINTR", Some("To be restarted")),
    (514, "ERESTARTNOHAND", Some("To be restarted if no handler")),
    (515, "ENOIOCTLCMD", None),
    (516, "ERESTART_RESTARTBLOCK", Some("Interrupted by signal")),
    (517, "EPROBE_DEFER", None),
    (518, "EOPENSTALE", None),
    (521, "EBADHANDLE", None),
    (522, "ENOTSYNC", None),
    (523, "EBADCOOKIE", None),
    (524, "ENOTSUPP", None),
    (525, "ETOOSMALL", None),
    (526, "ESERVERFAULT", None),
    (527, "EBADTYPE", None),
    (528, "EJUKEBOX", None),
    (529, "EIOCBQUEUED", None),
    (530, "ERECALLCONFLICT", None),
];

/// Spellings the kernel headers define for an errno that already has a name above.
const ERRNO_ALIASES: &[(&str, i32)] = &[("EWOULDBLOCK", 11), ("EDEADLOCK", 35), ("ENOTSUP", 95)];

fn errno_entry(errno: i32) -> Option<&'static (i32, &'static str, Option<&'static str>)> {
    ERRNOS.iter().find(|e| e.0 == errno)
}

/// The symbolic name of a (positive) errno, as strace prints it: `12` is `"ENOMEM"`.
pub fn errno_name(errno: i32) -> Option<&'static str> {
    errno_entry(errno).map(|e| e.1)
}

/// The glibc `strerror` text of a (positive) errno (`12` is `"Cannot allocate memory"`), or for
/// the ERESTART* codes the explanation strace prints.
pub fn errno_message(errno: i32) -> Option<&'static str> {
    errno_entry(errno).and_then(|e| e.2)
}

/// The errno called `name` (`"ENOMEM"` is 12); the header aliases EWOULDBLOCK, EDEADLOCK and ENOTSUP
/// are accepted too.
pub fn errno_by_name(name: &str) -> Option<i32> {
    ERRNOS.iter().find(|e| e.1 == name).map(|e| e.0).or_else(|| ERRNO_ALIASES.iter().find(|a| a.0 == name).map(|a| a.1))
}

/// The errno a raw syscall return value stands for: the kernel reports failure as `-errno` in
/// `-4095..=-1`, and nothing a successful syscall returns falls in that range.
pub fn is_error_return(ret: i64) -> Option<i32> {
    if (-4095..=-1).contains(&ret) {
        Some(-ret as i32)
    } else {
        None
    }
}

/// First real-time signal in the kernel's numbering. glibc keeps 32 and 33 for itself and reports
/// `SIGRTMIN` as 34, but strace (and so this module) names signals by the kernel's numbers.
const SIGRTMIN: i32 = 32;
const SIGRTMAX: i32 = 64;

/// Indexed by signal number. Past 32, strace's `SIGRT_<n - 32>` names.
const SIGNALS: [&str; 65] = [
    "0",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
    "SIGRTMIN",
    "SIGRT_1",
    "SIGRT_2",
    "SIGRT_3",
    "SIGRT_4",
    "SIGRT_5",
    "SIGRT_6",
    "SIGRT_7",
    "SIGRT_8",
    "SIGRT_9",
    "SIGRT_10",
    "SIGRT_11",
    "SIGRT_12",
    "SIGRT_13",
    "SIGRT_14",
    "SIGRT_15",
    "SIGRT_16",
    "SIGRT_17",
    "SIGRT_18",
    "SIGRT_19",
    "SIGRT_20",
    "SIGRT_21",
    "SIGRT_22",
    "SIGRT_23",
    "SIGRT_24",
    "SIGRT_25",
    "SIGRT_26",
    "SIGRT_27",
    "SIGRT_28",
    "SIGRT_29",
    "SIGRT_30",
    "SIGRT_31",
    "SIGRT_32",
];

/// Other spellings of signals that already have a name above (without the `SIG` prefix).
const SIGNAL_ALIASES: &[(&str, i32)] = &[("IOT", 6), ("CLD", 17), ("POLL", 29)];

/// The name strace gives signal `sig`: `9` is `"SIGKILL"`. Real-time signals follow strace, not
/// glibc: 32 is `"SIGRTMIN"`, 33 to 64 are `"SIGRT_1"` to `"SIGRT_32"` (so glibc's `SIGRTMIN`, 34,
/// is `"SIGRT_2"`). 0 and anything outside 1..=64 have no name.
pub fn signal_name(sig: i32) -> Option<&'static str> {
    if (1..=SIGRTMAX).contains(&sig) {
        Some(SIGNALS[sig as usize])
    } else {
        None
    }
}

/// The signal called `name`, with or without the `SIG` prefix and in any case: `"SIGKILL"`,
/// `"KILL"` and `"kill"` are all 9. Accepts every name [`signal_name`] produces (`"SIGRTMIN"`,
/// `"SIGRT_5"`) plus the aliases IOT, CLD and POLL.
pub fn signal_by_name(name: &str) -> Option<i32> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(pos) = SIGNALS[1..].iter().position(|s| &s[3..] == bare) {
        return Some(pos as i32 + 1);
    }
    if let Some(&(_, sig)) = SIGNAL_ALIASES.iter().find(|a| a.0 == bare) {
        return Some(sig);
    }
    // SIGRT_0 is never printed (32 is SIGRTMIN) but means the same thing to a reader.
    match bare.strip_prefix("RT_").and_then(|n| n.parse::<i32>().ok()) {
        Some(n) if (0..=SIGRTMAX - SIGRTMIN).contains(&n) => Some(SIGRTMIN + n),
        _ => None,
    }
}

/// `si_code` values any signal can carry (sender-side codes are <= 0, the kernel's is 0x80).
const SI_CODES: &[(i32, &str)] = &[
    (0, "SI_USER"),
    (0x80, "SI_KERNEL"),
    (-1, "SI_QUEUE"),
    (-2, "SI_TIMER"),
    (-3, "SI_MESGQ"),
    (-4, "SI_ASYNCIO"),
    (-5, "SI_SIGIO"),
    (-6, "SI_TKILL"),
    (-7, "SI_DETHREAD"),
    (-60, "SI_ASYNCNL"),
];

// Positive codes mean something different for each signal. The `__` and non-x86 entries are
// defined by the generic uapi headers, so a (foreign or emulated) kernel can still send them.
const ILL_CODES: &[(i32, &str)] = &[
    (1, "ILL_ILLOPC"),
    (2, "ILL_ILLOPN"),
    (3, "ILL_ILLADR"),
    (4, "ILL_ILLTRP"),
    (5, "ILL_PRVOPC"),
    (6, "ILL_PRVREG"),
    (7, "ILL_COPROC"),
    (8, "ILL_BADSTK"),
    (9, "ILL_BADIADDR"),
    (10, "__ILL_BREAK"),
    (11, "__ILL_BNDMOD"),
];
const FPE_CODES: &[(i32, &str)] = &[
    (1, "FPE_INTDIV"),
    (2, "FPE_INTOVF"),
    (3, "FPE_FLTDIV"),
    (4, "FPE_FLTOVF"),
    (5, "FPE_FLTUND"),
    (6, "FPE_FLTRES"),
    (7, "FPE_FLTINV"),
    (8, "FPE_FLTSUB"),
    (9, "__FPE_DECOVF"),
    (10, "__FPE_DECDIV"),
    (11, "__FPE_DECERR"),
    (12, "__FPE_INVASC"),
    (13, "__FPE_INVDEC"),
    (14, "FPE_FLTUNK"),
    (15, "FPE_CONDTRAP"),
];
const SEGV_CODES: &[(i32, &str)] = &[
    (1, "SEGV_MAPERR"),
    (2, "SEGV_ACCERR"),
    (3, "SEGV_BNDERR"),
    (4, "SEGV_PKUERR"),
    (5, "SEGV_ACCADI"),
    (6, "SEGV_ADIDERR"),
    (7, "SEGV_ADIPERR"),
    (8, "SEGV_MTEAERR"),
    (9, "SEGV_MTESERR"),
    (10, "SEGV_CPERR"),
];
const BUS_CODES: &[(i32, &str)] =
    &[(1, "BUS_ADRALN"), (2, "BUS_ADRERR"), (3, "BUS_OBJERR"), (4, "BUS_MCEERR_AR"), (5, "BUS_MCEERR_AO")];
const TRAP_CODES: &[(i32, &str)] =
    &[(1, "TRAP_BRKPT"), (2, "TRAP_TRACE"), (3, "TRAP_BRANCH"), (4, "TRAP_HWBKPT"), (5, "TRAP_UNK"), (6, "TRAP_PERF")];
const CLD_CODES: &[(i32, &str)] = &[
    (1, "CLD_EXITED"),
    (2, "CLD_KILLED"),
    (3, "CLD_DUMPED"),
    (4, "CLD_TRAPPED"),
    (5, "CLD_STOPPED"),
    (6, "CLD_CONTINUED"),
];
const POLL_CODES: &[(i32, &str)] =
    &[(1, "POLL_IN"), (2, "POLL_OUT"), (3, "POLL_MSG"), (4, "POLL_ERR"), (5, "POLL_PRI"), (6, "POLL_HUP")];
const SYS_CODES: &[(i32, &str)] = &[(1, "SYS_SECCOMP"), (2, "SYS_USER_DISPATCH")];

fn lookup(table: &[(i32, &'static str)], code: i32) -> Option<&'static str> {
    table.iter().find(|e| e.0 == code).map(|e| e.1)
}

/// The codes that mean something only for signal `sig`.
fn per_signal_codes(sig: i32) -> &'static [(i32, &'static str)] {
    match sig {
        4 => ILL_CODES,
        5 => TRAP_CODES,
        7 => BUS_CODES,
        8 => FPE_CODES,
        11 => SEGV_CODES,
        17 => CLD_CODES,
        29 => POLL_CODES,
        31 => SYS_CODES,
        _ => &[],
    }
}

/// The name of `si_code` `code` for signal `sig`: `SI_USER`, `SI_TKILL`, `SI_KERNEL`, ... for any
/// signal, else the signal's own codes (`SEGV_MAPERR`, `CLD_EXITED`, ...); a code with no name is
/// given in decimal. The generic codes are tried first, as strace does.
pub fn si_code_name(sig: i32, code: i32) -> String {
    lookup(SI_CODES, code)
        .or_else(|| lookup(per_signal_codes(sig), code))
        .map_or_else(|| code.to_string(), str::to_string)
}

/// The `si_code` strace calls `name` for signal `sig` (the inverse of [`si_code_name`], from the
/// same tables): `SI_USER` is 0, `SEGV_ACCERR` is 2 for SIGSEGV; a decimal code is read as such.
pub fn si_code_by_name(sig: i32, name: &str) -> Option<i32> {
    let find = |table: &[(i32, &str)]| table.iter().find(|e| e.1 == name).map(|e| e.0);
    find(SI_CODES).or_else(|| find(per_signal_codes(sig))).or_else(|| name.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_names_and_glibc_messages_cover_every_x86_64_errno() {
        assert_eq!(errno_name(12), Some("ENOMEM"));
        assert_eq!(errno_message(12), Some("Cannot allocate memory"));
        assert_eq!(errno_name(1), Some("EPERM"));
        assert_eq!(errno_message(11), Some("Resource temporarily unavailable"));
        assert_eq!(errno_name(133), Some("EHWPOISON"));
        assert_eq!(errno_message(133), Some("Memory page has hardware error"));
        // 41 and 58 are holes in the x86_64 numbering.
        for errno in (1..=133).filter(|e| *e != 41 && *e != 58) {
            assert!(errno_name(errno).is_some(), "errno {errno} has no name");
            assert!(errno_message(errno).is_some(), "errno {errno} has no message");
        }
        for hole in [0, 41, 58, 134, -1] {
            assert_eq!(errno_name(hole), None);
            assert_eq!(errno_message(hole), None);
        }
    }

    #[test]
    fn errno_names_follow_strace_where_headers_have_two_spellings() {
        assert_eq!(errno_name(11), Some("EAGAIN"));
        assert_eq!(errno_name(35), Some("EDEADLK"));
        assert_eq!(errno_name(95), Some("EOPNOTSUPP"));
    }

    #[test]
    fn restart_codes_carry_the_explanations_strace_prints() {
        assert_eq!(errno_name(512), Some("ERESTARTSYS"));
        assert_eq!(errno_message(512), Some("To be restarted if SA_RESTART is set"));
        assert_eq!(errno_name(513), Some("ERESTARTNOINTR"));
        assert_eq!(errno_message(513), Some("To be restarted"));
        assert_eq!(errno_name(514), Some("ERESTARTNOHAND"));
        assert_eq!(errno_message(514), Some("To be restarted if no handler"));
        assert_eq!(errno_name(516), Some("ERESTART_RESTARTBLOCK"));
        assert_eq!(errno_message(516), Some("Interrupted by signal"));
        assert_eq!(errno_name(515), Some("ENOIOCTLCMD"));
        assert_eq!(errno_message(515), None);
    }

    #[test]
    fn errno_by_name_inverts_errno_name_and_knows_the_aliases() {
        for &(errno, name, _) in ERRNOS {
            assert_eq!(errno_by_name(name), Some(errno));
        }
        assert_eq!(errno_by_name("EWOULDBLOCK"), Some(11));
        assert_eq!(errno_by_name("EDEADLOCK"), Some(35));
        assert_eq!(errno_by_name("ENOTSUP"), Some(95));
        assert_eq!(errno_by_name("ENOSUCH"), None);
        assert_eq!(errno_by_name("enomem"), None);
    }

    #[test]
    fn error_returns_are_exactly_minus_4095_to_minus_1() {
        assert_eq!(is_error_return(-12), Some(12));
        assert_eq!(is_error_return(-1), Some(1));
        assert_eq!(is_error_return(-4095), Some(4095));
        assert_eq!(is_error_return(-512), Some(512));
        assert_eq!(is_error_return(-4096), None);
        assert_eq!(is_error_return(0), None);
        assert_eq!(is_error_return(1234), None);
        // An mmap address near the top of the address space is a success, not an errno.
        assert_eq!(is_error_return(0x7fff_dfa0_0000), None);
        assert_eq!(is_error_return(i64::MIN), None);
    }

    #[test]
    fn signal_names_use_strace_realtime_numbering() {
        assert_eq!(signal_name(9), Some("SIGKILL"));
        assert_eq!(signal_name(1), Some("SIGHUP"));
        assert_eq!(signal_name(17), Some("SIGCHLD"));
        assert_eq!(signal_name(31), Some("SIGSYS"));
        assert_eq!(signal_name(32), Some("SIGRTMIN"));
        assert_eq!(signal_name(33), Some("SIGRT_1"));
        assert_eq!(signal_name(34), Some("SIGRT_2"));
        assert_eq!(signal_name(64), Some("SIGRT_32"));
        for none in [0, 65, -1, i32::MIN] {
            assert_eq!(signal_name(none), None);
        }
    }

    #[test]
    fn signal_names_match_the_host_signal_numbers() {
        let host = [
            (libc::SIGHUP, "SIGHUP"),
            (libc::SIGABRT, "SIGABRT"),
            (libc::SIGBUS, "SIGBUS"),
            (libc::SIGUSR1, "SIGUSR1"),
            (libc::SIGSEGV, "SIGSEGV"),
            (libc::SIGTERM, "SIGTERM"),
            (libc::SIGSTKFLT, "SIGSTKFLT"),
            (libc::SIGCHLD, "SIGCHLD"),
            (libc::SIGSTOP, "SIGSTOP"),
            (libc::SIGIO, "SIGIO"),
            (libc::SIGPWR, "SIGPWR"),
            (libc::SIGSYS, "SIGSYS"),
        ];
        for (sig, name) in host {
            assert_eq!(signal_name(sig), Some(name));
        }
    }

    #[test]
    fn signal_by_name_accepts_with_or_without_sig_prefix() {
        assert_eq!(signal_by_name("SIGKILL"), Some(9));
        assert_eq!(signal_by_name("KILL"), Some(9));
        assert_eq!(signal_by_name("sigterm"), Some(15));
        assert_eq!(signal_by_name("SIGRTMIN"), Some(32));
        assert_eq!(signal_by_name("RT_2"), Some(34));
        assert_eq!(signal_by_name("SIGRT_0"), Some(32));
        assert_eq!(signal_by_name("SIGRT_33"), None);
        assert_eq!(signal_by_name("IOT"), Some(6));
        assert_eq!(signal_by_name("SIGCLD"), Some(17));
        assert_eq!(signal_by_name("SIGPOLL"), Some(29));
        assert_eq!(signal_by_name("SIG"), None);
        assert_eq!(signal_by_name(""), None);
        assert_eq!(signal_by_name("0"), None);
        assert_eq!(signal_by_name("SIGNOPE"), None);
        for sig in 1..=64 {
            assert_eq!(signal_by_name(signal_name(sig).unwrap()), Some(sig));
        }
    }

    #[test]
    fn si_code_names_generic_codes_for_any_signal() {
        assert_eq!(si_code_name(15, 0), "SI_USER");
        assert_eq!(si_code_name(9, 0x80), "SI_KERNEL");
        assert_eq!(si_code_name(10, -1), "SI_QUEUE");
        assert_eq!(si_code_name(14, -2), "SI_TIMER");
        assert_eq!(si_code_name(10, -3), "SI_MESGQ");
        assert_eq!(si_code_name(10, -4), "SI_ASYNCIO");
        assert_eq!(si_code_name(29, -5), "SI_SIGIO");
        assert_eq!(si_code_name(6, -6), "SI_TKILL");
        // Generic codes win over per-signal ones, as in strace.
        assert_eq!(si_code_name(11, 0x80), "SI_KERNEL");
    }

    #[test]
    fn si_code_names_per_signal_codes() {
        assert_eq!(si_code_name(11, 1), "SEGV_MAPERR");
        assert_eq!(si_code_name(11, 2), "SEGV_ACCERR");
        assert_eq!(si_code_name(11, 3), "SEGV_BNDERR");
        assert_eq!(si_code_name(11, 4), "SEGV_PKUERR");
        assert_eq!(si_code_name(7, 1), "BUS_ADRALN");
        assert_eq!(si_code_name(7, 2), "BUS_ADRERR");
        assert_eq!(si_code_name(7, 3), "BUS_OBJERR");
        assert_eq!(si_code_name(7, 4), "BUS_MCEERR_AR");
        assert_eq!(si_code_name(7, 5), "BUS_MCEERR_AO");
        assert_eq!(si_code_name(4, 1), "ILL_ILLOPC");
        assert_eq!(si_code_name(4, 8), "ILL_BADSTK");
        assert_eq!(si_code_name(8, 1), "FPE_INTDIV");
        assert_eq!(si_code_name(8, 7), "FPE_FLTINV");
        assert_eq!(si_code_name(5, 1), "TRAP_BRKPT");
        assert_eq!(si_code_name(5, 4), "TRAP_HWBKPT");
        assert_eq!(si_code_name(17, 1), "CLD_EXITED");
        assert_eq!(si_code_name(17, 2), "CLD_KILLED");
        assert_eq!(si_code_name(17, 3), "CLD_DUMPED");
        assert_eq!(si_code_name(17, 4), "CLD_TRAPPED");
        assert_eq!(si_code_name(17, 5), "CLD_STOPPED");
        assert_eq!(si_code_name(17, 6), "CLD_CONTINUED");
        assert_eq!(si_code_name(29, 1), "POLL_IN");
        assert_eq!(si_code_name(31, 1), "SYS_SECCOMP");
    }

    #[test]
    fn si_code_by_name_inverts_si_code_name() {
        for sig in 1..=64 {
            for code in [-60, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x80, 99] {
                assert_eq!(si_code_by_name(sig, &si_code_name(sig, code)), Some(code), "sig {sig} code {code}");
            }
        }
        assert_eq!(si_code_by_name(11, "SEGV_MAPERR"), Some(1));
        assert_eq!(si_code_by_name(7, "SEGV_MAPERR"), None);
        assert_eq!(si_code_by_name(9, "NOPE"), None);
    }

    #[test]
    fn si_code_without_a_name_is_printed_in_decimal() {
        assert_eq!(si_code_name(11, 99), "99");
        assert_eq!(si_code_name(15, 1), "1");
        assert_eq!(si_code_name(17, 7), "7");
        assert_eq!(si_code_name(9, -42), "-42");
    }
}
