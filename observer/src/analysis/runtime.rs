//! Which language runtime a process runs, and its frames in that runtime's own words: names
//! demangled (OCaml, Rust, C++), what a runtime's wait or loop function means (`caml_mutex_lock`
//! is `Mutex.lock`), and how to get names for its JIT code when it wrote none.
use serde::{Deserialize, Serialize};

/// The runtime a process was recognised as, from its executable and mappings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Go,
    Cpython,
    Jvm,
    Node,
    Ocaml,
    Rust,
    /// C or C++ on glibc, with no other runtime recognised.
    C,
    #[default]
    Unknown,
}

impl Runtime {
    /// The name people know it by.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Go => "Go",
            Runtime::Cpython => "CPython",
            Runtime::Jvm => "JVM (HotSpot)",
            Runtime::Node => "Node.js (V8)",
            Runtime::Ocaml => "OCaml",
            Runtime::Rust => "Rust",
            Runtime::C => "C/C++ (glibc)",
            Runtime::Unknown => "unknown runtime",
        }
    }

    /// How to make the runtime name its JIT code, for a process that wrote no perf map.
    pub fn jit_hint(self) -> &'static str {
        match self {
            Runtime::Node => "start node with --perf-basic-prof to name JIT code (/tmp/perf-PID.map)",
            Runtime::Jvm => {
                "run `jcmd PID Compiler.perfmap`, or start java with -XX:+UnlockDiagnosticVMOptions -XX:+DumpPerfMapAtExit, to name JIT code (/tmp/perf-PID.map)"
            }
            Runtime::Cpython => "CPython 3.12+ names Python functions with -X perf (/tmp/perf-PID.map)",
            _ => "no perf map (/tmp/perf-PID.map) names this JIT code",
        }
    }

    /// Whether the runtime answers a request for its own view of the threads without dying.
    pub fn dump_note(self) -> Option<&'static str> {
        match self {
            Runtime::Go => Some(
                "Go prints goroutine stacks only on SIGQUIT, which also kills the process: not done; run it with GOTRACEBACK=all and send SIGQUIT yourself if it may die",
            ),
            Runtime::Node => Some("node prints a diagnostic report with `node --report-on-signal` (SIGUSR2) when started with it: not requested"),
            Runtime::Ocaml => Some("the OCaml runtime has no stack dump of its own"),
            _ => None,
        }
    }
}

impl std::fmt::Display for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// `name` as its language writes it: OCaml `camlModule__fn_NN` becomes `Module.fn`, Rust
/// (legacy and v0 mangling) and C++ (Itanium) names are demangled, C++ without its parameter list.
/// Anything else comes back unchanged.
pub fn demangle(name: &str) -> String {
    if let Some(ocaml) = demangle_ocaml(name) {
        return ocaml;
    }
    if let Ok(rust) = rustc_demangle::try_demangle(name) {
        // `{:#}` leaves out the hash suffix.
        return format!("{rust:#}");
    }
    if name.starts_with("_Z") {
        if let Ok(symbol) = cpp_demangle::Symbol::new(name) {
            let options = cpp_demangle::DemangleOptions::new().no_params().no_return_type();
            if let Ok(text) = symbol.demangle_with_options(&options) {
                return text;
            }
        }
    }
    name.to_string()
}

/// OCaml native code symbols (4.x): `caml` + compilation unit + `__` + function + `_` + a unique
/// stamp; a unit packed or wrapped by dune has `__` inside its name too (`Stdlib__Mutex`), and
/// characters outside identifiers are written `$xx` in hex. Runtime C functions (`caml_*`) and a
/// unit's own symbols (`camlFoo__entry`, `camlFoo__code_begin`) are not functions of the program.
fn demangle_ocaml(name: &str) -> Option<String> {
    let rest = name.strip_prefix("caml")?;
    if !rest.starts_with(|c: char| c.is_ascii_uppercase()) {
        return None;
    }
    let (path, stamp) = rest.rsplit_once('_')?;
    if stamp.is_empty() || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let parts: Vec<&str> = path.split("__").collect();
    if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let (function, units) = parts.split_last()?;
    let function = unescape_ocaml(function)?;
    let function = if function == "fun" { "<fun>".to_string() } else { function };
    Some(format!("{}.{function}", units.join(".")))
}

/// `$2b$2b` -> `++`.
fn unescape_ocaml(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '$' {
            let hex: String = chars.by_ref().take(2).collect();
            out.push(char::from(u8::from_str_radix(&hex, 16).ok()?));
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// A function name without a C++ parameter list at its end: `ObjectMonitor::enter(JavaThread*)`
/// -> `ObjectMonitor::enter`; Go's `sync.(*Mutex).Lock` keeps its parentheses.
fn base_name(function: &str) -> &str {
    if !function.ends_with(')') {
        return function;
    }
    let mut depth = 0;
    for (i, c) in function.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    return function[..i].trim_end();
                }
            }
            _ => {}
        }
    }
    function
}

/// What a frame means in its runtime's words, for the functions where a runtime waits, schedules
/// or interprets; `None` for ordinary code. `specific` is false for the generic glibc meanings,
/// which a runtime's own meaning further out should win over.
pub fn meaning(runtime: Runtime, function: &str) -> Option<(String, bool)> {
    let base = base_name(function);
    let own = match runtime {
        Runtime::Cpython => cpython(base),
        Runtime::Ocaml => ocaml(base),
        Runtime::Go => go(base),
        Runtime::Jvm => jvm(base),
        Runtime::Node => node(base),
        Runtime::Rust => rust(base),
        Runtime::C | Runtime::Unknown => None,
    };
    own.map(|m| (m, true)).or_else(|| glibc(base).map(|m| (m.to_string(), false)))
}

/// Whether a stack ends at `function` in this runtime: past it lies another stack, or nothing.
/// Go's `mcall` and `morestack` switch to the scheduler's stack, so the words above them on that
/// stack are no callers (Go's own traceback stops there too).
pub fn is_outermost(runtime: Runtime, function: &str) -> bool {
    runtime == Runtime::Go
        && matches!(
            function,
            "runtime.mcall" | "runtime.morestack" | "runtime.mstart" | "runtime.goexit" | "runtime.rt0_go"
        )
}

/// The meaning of the frame that best says where a thread is (innermost first): the innermost
/// frame with a meaning of its runtime's own, else the innermost with a generic one.
pub fn activity<'a>(runtime: Runtime, functions: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut generic = None;
    for function in functions {
        match meaning(runtime, function) {
            Some((m, true)) => return Some(m),
            Some((m, false)) if generic.is_none() => generic = Some(m),
            _ => {}
        }
    }
    generic
}

fn glibc(base: &str) -> Option<&'static str> {
    Some(match base {
        "__lll_lock_wait"
        | "__lll_lock_wait_private"
        | "pthread_mutex_lock"
        | "___pthread_mutex_lock"
        | "__pthread_mutex_lock"
        | "__pthread_mutex_lock_full" => "waits for a pthread mutex",
        "pthread_cond_wait"
        | "___pthread_cond_wait"
        | "__pthread_cond_wait"
        | "pthread_cond_timedwait"
        | "___pthread_cond_timedwait"
        | "__pthread_cond_wait_common"
        | "pthread_cond_clockwait" => "waits on a pthread condition variable",
        "pthread_join" | "___pthread_join" | "__pthread_clockjoin_ex" => "waits in pthread_join for a thread to end",
        "sem_wait"
        | "__new_sem_wait"
        | "sem_clockwait"
        | "sem_timedwait"
        | "do_futex_wait"
        | "__new_sem_wait_slow64" => "waits on a semaphore",
        "epoll_wait" => "waits in epoll_wait",
        "__GI___poll" | "poll" | "ppoll" => "waits in poll",
        "nanosleep" | "__GI___clock_nanosleep" | "clock_nanosleep" | "__clock_nanosleep" | "sleep" | "usleep" => {
            "sleeps"
        }
        _ => return None,
    })
}

fn cpython(base: &str) -> Option<String> {
    Some(
        match base {
            "PyThread_acquire_lock_timed"
            | "PyThread_acquire_lock"
            | "acquire_timed"
            | "lock_PyThread_acquire_lock"
            | "rlock_acquire" => "waits on a Python lock (threading.Lock/RLock.acquire; CPython records no owner)",
            "take_gil" | "PyEval_RestoreThread" | "PyEval_AcquireThread" => "waits for the GIL",
            "_PyEval_EvalFrameDefault" => {
                "runs Python bytecode (CPython's interpreter loop; `py-spy dump` names the Python functions)"
            }
            "pysleep" | "time_sleep" => "time.sleep",
            "select_select_impl" | "select_select" => "select.select",
            "os_waitpid_impl" | "os_waitpid" => "os.waitpid",
            "os_read_impl" | "os_read" => "os.read",
            "_PyObject_GC_Link" | "gc_collect_main" => "the garbage collector",
            _ => return None,
        }
        .to_string(),
    )
}

fn ocaml(base: &str) -> Option<String> {
    let fixed = match base {
        "caml_mutex_lock" => "Mutex.lock",
        "caml_condition_wait" => "Condition.wait",
        "caml_thread_join" => "Thread.join",
        "caml_thread_yield" => "Thread.yield",
        "caml_thread_delay" => "Thread.delay",
        "st_masterlock_acquire" | "caml_thread_leave_blocking_section" => {
            "waits for the OCaml master lock (another OCaml thread holds the runtime)"
        }
        "caml_thread_tick" => "the tick thread (hands the master lock over every 50 ms)",
        "caml_ml_input" | "caml_ml_input_char" | "caml_ml_input_scan_line" | "caml_ml_input_int" => {
            "reads an in_channel"
        }
        "caml_ml_output" | "caml_ml_output_bytes" | "caml_ml_flush" => "writes an out_channel",
        "caml_major_collection_slice" | "caml_minor_collection" | "caml_gc_dispatch" => "the garbage collector",
        _ => "",
    };
    if !fixed.is_empty() {
        return Some(fixed.to_string());
    }
    // The Unix library's stubs: `unix_read` is `Unix.read`.
    base.strip_prefix("unix_").filter(|f| !f.is_empty()).map(|f| format!("Unix.{f}"))
}

fn go(base: &str) -> Option<String> {
    Some(
        match base {
            "sync.(*Mutex).Lock" | "sync.(*Mutex).lockSlow" | "sync.runtime_SemacquireMutex" => {
                "a goroutine waits on a sync.Mutex"
            }
            "sync.(*RWMutex).Lock" | "sync.(*RWMutex).RLock" => "a goroutine waits on a sync.RWMutex",
            "sync.(*WaitGroup).Wait" => "a goroutine waits on a sync.WaitGroup",
            "runtime.chanrecv" | "runtime.chanrecv1" | "runtime.chanrecv2" => {
                "a goroutine waits to receive on a channel"
            }
            "runtime.chansend" | "runtime.chansend1" => "a goroutine waits to send on a channel",
            "runtime.selectgo" => "a goroutine waits in select",
            "runtime.gopark" => "a goroutine parks",
            "runtime.notesleep" | "runtime.stopm" | "runtime.mPark" => {
                "an idle OS thread (M) parked by the Go scheduler; goroutines are not on it"
            }
            "runtime.findrunnable" | "runtime.findRunnable" | "runtime.schedule" => {
                "the Go scheduler looking for a goroutine to run"
            }
            "runtime.netpoll" | "runtime.epollwait" => "the Go network poller waits for I/O",
            "runtime.sysmon" => "sysmon, the Go runtime's monitor thread",
            "runtime.gcBgMarkWorker" | "runtime.gcDrain" | "runtime.scanobject" => "the Go garbage collector",
            "runtime.mallocgc" => "allocates (runtime.mallocgc)",
            "runtime.templateThread" => "the Go runtime's template thread",
            _ => return None,
        }
        .to_string(),
    )
}

fn jvm(base: &str) -> Option<String> {
    Some(
        match base {
            "ObjectMonitor::enter" | "ObjectMonitor::EnterI" | "ObjectSynchronizer::enter" => {
                "waits to enter a Java monitor (synchronized)"
            }
            "ObjectMonitor::wait" | "JVM_MonitorWait" | "ObjectSynchronizer::wait" => "Object.wait",
            "Unsafe_Park" | "Parker::park" => "LockSupport.park (a java.util.concurrent lock or condition)",
            "JVM_Sleep" | "JavaThread::sleep" => "Thread.sleep",
            "Monitor::wait" | "Monitor::wait_without_safepoint_check" | "PlatformMonitor::wait" => {
                "a JVM-internal thread waits for work"
            }
            "WatcherThread::sleep" => "the JVM's watcher thread",
            "JavaMain" => "the java launcher's main thread",
            "Interpreter" => "runs interpreted Java bytecode",
            _ => return None,
        }
        .to_string(),
    )
}

fn node(base: &str) -> Option<String> {
    if let Some(js) = ["JS:", "LazyCompile:", "Function:"].iter().find_map(|p| base.strip_prefix(p)) {
        let (tier, name) = match js.chars().next() {
            Some('*') => ("optimized", &js[1..]),
            Some('~') => ("interpreted", &js[1..]),
            Some('^') => ("baseline", &js[1..]),
            Some('+') => ("Maglev", &js[1..]),
            _ => ("JIT", js),
        };
        let name = name.split_whitespace().next().filter(|n| !n.is_empty()).unwrap_or("(anonymous)");
        return Some(format!("runs JavaScript {name} ({tier} code)"));
    }
    Some(
        match base {
            "uv__io_poll" => "the libuv event loop waits for I/O (idle)",
            "uv_cond_wait" | "uv_sem_wait" => "a libuv or V8 worker thread waits for work",
            "v8::internal::Heap::CollectGarbage" => "the V8 garbage collector",
            _ => return None,
        }
        .to_string(),
    )
}

fn rust(base: &str) -> Option<String> {
    let contains = |s: &str| base.contains(s);
    Some(
        if contains("Mutex") && (contains("lock_contended") || base.ends_with("::lock")) {
            "waits for a std::sync::Mutex"
        } else if contains("Condvar") && contains("wait") {
            "waits on a std::sync::Condvar"
        } else if contains("JoinInner") && contains("join") {
            "JoinHandle::join"
        } else if base == "std::thread::park" || base.ends_with("Parker::park") {
            "std::thread::park (a channel or another std primitive)"
        } else {
            return None;
        }
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ocaml_symbols_read_as_module_dot_function() {
        assert_eq!(demangle("camlOcaml_abba__transfer_84"), "Ocaml_abba.transfer");
        assert_eq!(demangle("camlStdlib__Mutex__lock_123"), "Stdlib.Mutex.lock");
        assert_eq!(demangle("camlFoo__fun_1402"), "Foo.<fun>");
        assert_eq!(demangle("camlFoo__$2b$2b_12"), "Foo.++");
        // Runtime functions and a unit's own symbols stay as they are.
        for kept in ["caml_mutex_lock", "camlFoo__entry", "camlFoo__code_begin", "camlFoo", "caml_program"] {
            assert_eq!(demangle(kept), kept);
        }
    }

    #[test]
    fn rust_and_cpp_symbols_are_demangled_without_hash_or_parameters() {
        assert_eq!(demangle("_ZN3std6thread4park17h0123456789abcdefE"), "std::thread::park");
        assert_eq!(demangle("_RNvNtCs1234_3std6thread4park"), "std::thread::park");
        assert_eq!(demangle("_ZN13ObjectMonitor5enterEP10JavaThread"), "ObjectMonitor::enter");
        assert_eq!(
            demangle("_ZN2v88internal4Heap14CollectGarbageENS0_15AllocationSpaceE"),
            "v8::internal::Heap::CollectGarbage"
        );
        assert_eq!(demangle("main.spinForeverInGo"), "main.spinForeverInGo");
        assert_eq!(demangle("pthread_mutex_lock"), "pthread_mutex_lock");
    }

    #[test]
    fn runtime_frames_read_in_the_runtimes_words() {
        let m = |r, f| meaning(r, f).map(|(m, _)| m);
        assert_eq!(m(Runtime::Ocaml, "caml_mutex_lock").as_deref(), Some("Mutex.lock"));
        assert_eq!(m(Runtime::Ocaml, "unix_read").as_deref(), Some("Unix.read"));
        assert!(m(Runtime::Cpython, "PyThread_acquire_lock_timed").unwrap().starts_with("waits on a Python lock"));
        assert_eq!(
            m(Runtime::Jvm, "ObjectMonitor::enter(JavaThread*)").as_deref(),
            Some("waits to enter a Java monitor (synchronized)")
        );
        assert_eq!(
            m(Runtime::Node, "JS:*spinForeverInJs [eval]:1").as_deref(),
            Some("runs JavaScript spinForeverInJs (optimized code)")
        );
        assert_eq!(m(Runtime::Go, "sync.(*Mutex).lockSlow").as_deref(), Some("a goroutine waits on a sync.Mutex"));
        // glibc's meaning applies in any runtime, but a runtime's own wins further out.
        assert_eq!(meaning(Runtime::C, "__lll_lock_wait"), Some(("waits for a pthread mutex".into(), false)));
        let stack = ["__lll_lock_wait", "pthread_mutex_lock", "caml_mutex_lock", "Ocaml_abba.transfer"];
        assert_eq!(activity(Runtime::Ocaml, stack).as_deref(), Some("Mutex.lock"));
        assert_eq!(activity(Runtime::C, stack).as_deref(), Some("waits for a pthread mutex"));
        assert_eq!(activity(Runtime::C, ["main"]), None);
        assert_eq!(m(Runtime::C, "caml_mutex_lock"), None);
        assert!(is_outermost(Runtime::Go, "runtime.mcall") && !is_outermost(Runtime::C, "runtime.mcall"));
        assert_eq!(base_name("f(std::function<void (int)>)"), "f");
        assert_eq!(base_name("sync.(*Mutex).Lock"), "sync.(*Mutex).Lock");
    }

    #[test]
    fn runtimes_are_written_in_lowercase() {
        assert_eq!(serde_json::to_string(&Runtime::Cpython).unwrap(), "\"cpython\"");
        assert_eq!(serde_json::from_str::<Runtime>("\"jvm\"").unwrap(), Runtime::Jvm);
        assert_eq!(Runtime::default(), Runtime::Unknown);
    }
}
