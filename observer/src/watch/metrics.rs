//! `--metrics ADDR`: the watch's counters in the Prometheus text format, served over plain HTTP
//! (`GET /metrics`), rendered from a shared snapshot the daemon loop keeps current.
use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use observer_common::Signature;

use super::incident::IncidentKind;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// Everything the endpoint reports.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub events_received: BTreeMap<&'static str, u64>,
    pub events_submitted: BTreeMap<&'static str, u64>,
    pub events_dropped: BTreeMap<&'static str, u64>,
    pub inflight_overflows: u64,
    pub incidents: BTreeMap<Signature, u64>,
    pub incidents_suppressed: BTreeMap<IncidentKind, u64>,
    pub unconfirmed_triggers: u64,
    pub tracked_processes: usize,
    pub trees: usize,
    pub recorder_events: usize,
    pub recorder_bytes: usize,
    pub ring_pending_bytes: u64,
    pub ring_size_bytes: u64,
}

pub type Shared = Arc<Mutex<Metrics>>;

fn own_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest: Vec<&str> = stat.rsplit_once(')').map_or(vec![], |(_, r)| r.split_whitespace().collect());
    let ticks = |i: usize| rest.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / crate::hang::procread::clock_ticks_per_second() as f64
}

fn own_rss_bytes() -> u64 {
    crate::hang::procread::rss_kb(std::process::id()) * 1024
}

fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let labelled = |out: &mut String,
                        name: &str,
                        help: &str,
                        kind: &str,
                        label: &str,
                        values: &mut dyn Iterator<Item = (String, u64)>| {
            family(out, name, help, kind);
            for (k, v) in values {
                let _ = writeln!(out, "{name}{{{label}=\"{k}\"}} {v}");
            }
        };
        labelled(
            &mut out,
            "observer_events_received_total",
            "Records read from the kernel ring buffer, by kind.",
            "counter",
            "kind",
            &mut self.events_received.iter().map(|(k, v)| (k.to_string(), *v)),
        );
        labelled(
            &mut out,
            "observer_events_submitted_total",
            "Records the kernel submitted to the ring buffer, by kind.",
            "counter",
            "kind",
            &mut self.events_submitted.iter().map(|(k, v)| (k.to_string(), *v)),
        );
        labelled(
            &mut out,
            "observer_events_dropped_total",
            "Records lost because the ring buffer was full, by kind.",
            "counter",
            "kind",
            &mut self.events_dropped.iter().map(|(k, v)| (k.to_string(), *v)),
        );
        labelled(
            &mut out,
            "observer_incidents_total",
            "Incident directories written, by signature.",
            "counter",
            "signature",
            &mut self.incidents.iter().map(|(k, v)| (k.to_string(), *v)),
        );
        labelled(
            &mut out,
            "observer_incidents_suppressed_total",
            "Incidents held back by the rate limits, by signature.",
            "counter",
            "signature",
            // By name, `hang` among the signatures.
            &mut self
                .incidents_suppressed
                .iter()
                .map(|(k, v)| (k.name(), *v))
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v)),
        );
        let scalars: [(&str, &str, &str, f64); 10] = [
            (
                "observer_inflight_overflows_total",
                "Syscall entries not paired because the in-flight table was full.",
                "counter",
                self.inflight_overflows as f64,
            ),
            (
                "observer_unconfirmed_triggers_total",
                "Events that looked like a signature but that the classifiers did not confirm.",
                "counter",
                self.unconfirmed_triggers as f64,
            ),
            (
                "observer_tracked_processes",
                "Processes tracked in full (matching the filters).",
                "gauge",
                self.tracked_processes as f64,
            ),
            ("observer_process_trees", "Process trees with a flight recorder.", "gauge", self.trees as f64),
            (
                "observer_flight_recorder_events",
                "Events held in flight recorders.",
                "gauge",
                self.recorder_events as f64,
            ),
            ("observer_flight_recorder_bytes", "Bytes held in flight recorders.", "gauge", self.recorder_bytes as f64),
            (
                "observer_ring_buffer_pending_bytes",
                "Bytes pending in the kernel ring buffer at the last submit.",
                "gauge",
                self.ring_pending_bytes as f64,
            ),
            (
                "observer_ring_buffer_size_bytes",
                "Size of the kernel ring buffer.",
                "gauge",
                self.ring_size_bytes as f64,
            ),
            ("observer_cpu_seconds_total", "CPU time used by the observer itself.", "counter", own_cpu_seconds()),
            (
                "observer_resident_memory_bytes",
                "Resident memory of the observer itself.",
                "gauge",
                own_rss_bytes() as f64,
            ),
        ];
        for (name, help, kind, value) in scalars {
            family(&mut out, name, help, kind);
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

/// Serves `GET /metrics` on `addr` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Shared) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut request = Vec::with_capacity(1024);
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let first = String::from_utf8_lossy(&request).lines().next().unwrap_or_default().to_string();
            let (status, body) = if first.starts_with("GET /metrics") {
                ("200 OK", metrics.lock().map(|m| m.render()).unwrap_or_default())
            } else {
                ("404 Not Found", "only /metrics is served\n".to_string())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_typed_families_with_labels() {
        let mut m = Metrics::default();
        m.events_received.insert("syscall", 12);
        m.incidents.insert(Signature::CloneEagain, 1);
        let text = m.render();
        assert!(
            text.contains(
                "# TYPE observer_events_received_total counter\nobserver_events_received_total{kind=\"syscall\"} 12\n"
            ),
            "{text}"
        );
        assert!(text.contains("observer_incidents_total{signature=\"clone-eagain\"} 1\n"));
        assert!(text.contains("# TYPE observer_resident_memory_bytes gauge\nobserver_resident_memory_bytes "));
    }
}
