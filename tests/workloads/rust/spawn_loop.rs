//! Spawns threads that park until the end, up to the count given (default 10000). Under a pids
//! cgroup or RLIMIT_DATA `thread::spawn` fails and panics ("failed to spawn thread"): exit 101.
use std::{
    sync::{Arc, Barrier},
    thread,
};

fn main() {
    let max: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let end = Arc::new(Barrier::new(max + 1));
    let mut handles = Vec::new();
    for i in 0..max {
        let end = Arc::clone(&end);
        handles.push(thread::spawn(move || {
            end.wait();
        }));
        if i % 10 == 9 {
            println!("started {} threads", i + 1);
        }
    }
    end.wait();
    for h in handles {
        h.join().unwrap();
    }
    println!("all {max} threads ran");
}
