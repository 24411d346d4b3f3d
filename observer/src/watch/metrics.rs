//! `--metrics ADDR`: the watch's counters in the OpenMetrics text format (prometheus-client), served
//! over HTTP/1 by hyper (`GET /metrics`), rendered from a shared snapshot the daemon loop keeps
//! current. Connections are bounded: a request's headers must arrive within [`READ_TIMEOUT`], a
//! connection lives at most [`CONNECTION_DEADLINE`], and past [`MAX_CONNECTIONS`] the oldest is
//! closed, so idle clients cannot use up the daemon's descriptors.
use std::{
    collections::{BTreeMap, VecDeque},
    convert::Infallible,
    fmt::Display,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, header, server::conn::http1, service::service_fn, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeCounterValue, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge, MetricType},
    registry::Registry,
};
use tokio::{net::TcpListener, task::JoinSet};

use observer_common::Signature;

use super::incident::IncidentKind;
use crate::proc::task;

/// Everything the endpoint reports.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub events_received: BTreeMap<&'static str, u64>,
    pub events_submitted: BTreeMap<&'static str, u64>,
    pub events_dropped: BTreeMap<&'static str, u64>,
    pub inflight_overflows: u64,
    pub incidents: BTreeMap<Signature, u64>,
    /// Incidents by signature and the workload they happened in.
    pub incidents_by_workload: BTreeMap<(Signature, WorkloadLabels), u64>,
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

/// A workload as metric labels: runtime, container id, pod uid, QoS class, systemd unit (empty
/// where the cgroup path does not say).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct WorkloadLabels([String; 5]);

impl WorkloadLabels {
    const NAMES: [&'static str; 5] = ["runtime", "container_id", "pod_uid", "qos_class", "systemd_unit"];

    pub fn of(workload: Option<&crate::container::Workload>) -> Self {
        let text = |v: Option<&String>| v.cloned().unwrap_or_default();
        let w = workload.cloned().unwrap_or_default();
        WorkloadLabels([
            text(w.runtime.as_ref()),
            text(w.container_id.as_ref()),
            text(w.pod_uid.as_ref()),
            text(w.qos_class.as_ref()),
            text(w.systemd_unit.as_ref()),
        ])
    }
}

fn own_cpu_seconds() -> f64 {
    let ticks = task::process_stat(std::process::id()).map_or(0, |s| s.utime + s.stime);
    ticks as f64 / task::clock_ticks_per_second() as f64
}

fn own_rss_bytes() -> u64 {
    task::rss_kb(std::process::id()) * 1024
}

/// A request's headers must arrive within this long after the connection opens.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// No connection lives longer than this (a scrape takes milliseconds).
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// Connections served at once; a new one past this closes the oldest.
pub const MAX_CONNECTIONS: usize = 64;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One family with one label, a sample per value (label values are escaped by the encoder).
fn labelled<'a, K: Display + 'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'a K, &'a u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (key, value) in values {
        let labels = [(label, key.to_string())];
        ConstCounter::new(*value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: impl EncodeCounterValue,
) -> std::fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> std::fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// A snapshot, encoded on scrape. Counter names are given without `_total`: the encoder appends it
/// to the samples, as OpenMetrics has it.
impl Collector for Metrics {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let help = "Records read from the kernel ring buffer, by kind.";
        labelled(&mut e, "observer_events_received", help, "kind", &self.events_received)?;
        let help = "Records the kernel submitted to the ring buffer, by kind.";
        labelled(&mut e, "observer_events_submitted", help, "kind", &self.events_submitted)?;
        let help = "Records lost because the ring buffer was full, by kind.";
        labelled(&mut e, "observer_events_dropped", help, "kind", &self.events_dropped)?;
        let help = "Incident directories written, by signature.";
        labelled(&mut e, "observer_incidents", help, "signature", &self.incidents)?;
        let help = "Incident directories written, by signature and the workload (container, pod, systemd unit) of the process.";
        let mut family = e.encode_descriptor("observer_workload_incidents", help, None, MetricType::Counter)?;
        for ((signature, workload), value) in &self.incidents_by_workload {
            let mut labels = vec![("signature", signature.to_string())];
            labels.extend(WorkloadLabels::NAMES.iter().copied().zip(workload.0.iter().cloned()));
            ConstCounter::new(*value).encode(family.encode_family(&labels)?)?;
        }
        let help = "Incidents held back by the rate limits, by signature.";
        // By name, `hang` among the signatures.
        let suppressed: BTreeMap<&str, u64> = self.incidents_suppressed.iter().map(|(k, v)| (k.name(), *v)).collect();
        labelled(&mut e, "observer_incidents_suppressed", help, "signature", &suppressed)?;
        let help = "Syscall entries not paired because the in-flight table was full.";
        counter(&mut e, "observer_inflight_overflows", help, self.inflight_overflows)?;
        let help = "Events that looked like a signature but that the classifiers did not confirm.";
        counter(&mut e, "observer_unconfirmed_triggers", help, self.unconfirmed_triggers)?;
        let help = "Processes tracked in full (matching the filters).";
        gauge(&mut e, "observer_tracked_processes", help, self.tracked_processes as u64)?;
        gauge(&mut e, "observer_process_trees", "Process trees with a flight recorder.", self.trees as u64)?;
        let help = "Events held in flight recorders.";
        gauge(&mut e, "observer_flight_recorder_events", help, self.recorder_events as u64)?;
        let help = "Bytes held in flight recorders.";
        gauge(&mut e, "observer_flight_recorder_bytes", help, self.recorder_bytes as u64)?;
        let help = "Bytes pending in the kernel ring buffer at the last submit.";
        gauge(&mut e, "observer_ring_buffer_pending_bytes", help, self.ring_pending_bytes)?;
        gauge(&mut e, "observer_ring_buffer_size_bytes", "Size of the kernel ring buffer.", self.ring_size_bytes)?;
        counter(&mut e, "observer_cpu_seconds", "CPU time used by the observer itself.", own_cpu_seconds())?;
        gauge(&mut e, "observer_resident_memory_bytes", "Resident memory of the observer itself.", own_rss_bytes())
    }
}

impl Metrics {
    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.clone()));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("writing to a String cannot fail");
        out
    }
}

fn respond(request: &Request<Incoming>, metrics: &Shared) -> Response<Full<Bytes>> {
    let (status, content_type, body) =
        if request.uri().path() == "/metrics" && matches!(*request.method(), Method::GET | Method::HEAD) {
            (StatusCode::OK, CONTENT_TYPE, metrics.lock().map(|m| m.render()).unwrap_or_default())
        } else {
            (StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "only GET /metrics is served\n".to_string())
        };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    response
}

/// Serves `GET /metrics` on `listener` until the task is dropped (which closes every connection).
pub async fn serve(listener: TcpListener, metrics: Shared) {
    let mut connections = JoinSet::new();
    let mut open = VecDeque::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors or a connection reset before accept: do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        open.retain(|c: &tokio::task::AbortHandle| !c.is_finished());
        if open.len() >= MAX_CONNECTIONS {
            if let Some(oldest) = open.pop_front() {
                oldest.abort();
            }
        }
        let metrics = metrics.clone();
        open.push_back(connections.spawn(async move {
            let service = service_fn(move |request| {
                let response = respond(&request, &metrics);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(READ_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_DEADLINE, connection).await;
        }));
    }
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use std::{
        io::{Read, Write},
        net::TcpStream,
        time::Instant,
    };

    use super::*;

    #[test]
    fn the_exposition_has_typed_families_with_labels() {
        let mut m = Metrics::default();
        m.events_received.insert("syscall", 12);
        m.incidents.insert(Signature::CloneEagain, 1);
        let text = m.render();
        assert!(
            text.contains(
                "# TYPE observer_events_received counter\nobserver_events_received_total{kind=\"syscall\"} 12\n"
            ),
            "{text}"
        );
        assert!(text.contains("observer_incidents_total{signature=\"clone-eagain\"} 1\n"));
        assert!(text.contains("# TYPE observer_resident_memory_bytes gauge\nobserver_resident_memory_bytes "));
        assert!(text.contains("# TYPE observer_cpu_seconds counter\nobserver_cpu_seconds_total "), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn incidents_are_labelled_with_their_workload() {
        let mut m = Metrics::default();
        let pod = crate::container::Workload::from_path(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0c6c2fd5_2b7e_4f2a_9d4c_7b1f0e2a3c4d.slice/cri-containerd-4f1c6a2b9d8e7f60112233445566778899aabbccddeeff00112233445566aabb.scope",
        );
        m.incidents_by_workload.insert((Signature::HangBlocked, WorkloadLabels::of(pod.as_ref())), 2);
        m.incidents_by_workload.insert((Signature::CloneEagain, WorkloadLabels::of(None)), 1);
        let text = m.render();
        assert!(
            text.contains(
                "observer_workload_incidents_total{signature=\"hang-blocked\",runtime=\"containerd\",container_id=\"4f1c6a2b9d8e7f60112233445566778899aabbccddeeff00112233445566aabb\",pod_uid=\"0c6c2fd5-2b7e-4f2a-9d4c-7b1f0e2a3c4d\",qos_class=\"burstable\",systemd_unit=\"cri-containerd-4f1c6a2b9d8e7f60112233445566778899aabbccddeeff00112233445566aabb.scope\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("observer_workload_incidents_total{signature=\"clone-eagain\",runtime=\"\",container_id=\"\",pod_uid=\"\",qos_class=\"\",systemd_unit=\"\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut m = Metrics::default();
        m.events_received.insert("a\"b\\c\nd", 3);
        let text = m.render();
        assert!(text.contains("observer_events_received_total{kind=\"a\\\"b\\\\c\\nd\"} 3\n"), "{text}");
    }

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    /// What made the next incident fail with "Too many open files": hundreds of idle local
    /// connections, each held open for ever.
    #[test]
    fn idle_connections_are_capped_and_a_scrape_still_answers() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let listener = runtime.block_on(bind("127.0.0.1:0".parse().unwrap())).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut m = Metrics::default();
        m.events_received.insert("syscall", 7);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = std::thread::spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    _ = serve(listener, Arc::new(Mutex::new(m))) => {}
                    _ = stopped => {}
                }
            })
        });

        let idle: Vec<TcpStream> = (0..400).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let started = Instant::now();
        let response = get(addr, "/metrics");
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(response.contains("observer_events_received_total{kind=\"syscall\"} 7\n"), "{response}");
        assert!(started.elapsed() < READ_TIMEOUT, "answered in {:?}, not after idle ones timed out", started.elapsed());
        assert!(get(addr, "/other").starts_with("HTTP/1.1 404"));

        // The server closed all but the newest MAX_CONNECTIONS of the idle ones.
        let closed = idle
            .iter()
            .filter(|&(mut s)| {
                s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                match s.read(&mut [0u8; 1]) {
                    Ok(n) => n == 0,
                    Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
                }
            })
            .count();
        assert!(closed >= 400 - MAX_CONNECTIONS, "only {closed} of 400 idle connections were closed");
        stop.send(()).unwrap();
        server.join().unwrap();
    }
}
