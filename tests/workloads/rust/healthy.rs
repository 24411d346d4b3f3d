//! Healthy Rust: four std::threads sum a little each and send the result over a channel; main
//! joins them and exits 0.
use std::{sync::mpsc, thread};

fn main() {
    let (tx, rx) = mpsc::channel();
    let handles: Vec<_> = (0..4u64)
        .map(|n| {
            let tx = tx.clone();
            thread::spawn(move || tx.send((0..100_000u64).map(|i| i % (n + 2)).sum::<u64>()).unwrap())
        })
        .collect();
    drop(tx);
    for h in handles {
        h.join().unwrap();
    }
    println!("sum {}", rx.iter().sum::<u64>());
}
