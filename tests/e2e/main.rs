//! End-to-end tests: real programs run under the real `observer` binary, with the eBPF programs
//! loaded into the running kernel. Without root they skip with a reason, unless
//! OBSERVER_REQUIRE_BPF=1 (CI), where they fail instead.
mod container_identity;
mod diagnose;
mod hang;
mod harness;
mod hostile_text;
mod import_memory;
mod import_strace;
mod output_safety;
mod repeat;
mod run_capture;
mod run_errors;
mod runtimes;
mod see_the_run;
mod stacks;
mod stopping;
