"""Decodes a Perfetto trace written by `observer export` with the official schema (perfetto_trace_pb2
from the `perfetto` package) and prints what the e2e test checks, as JSON: the thread and process
tracks, slices per thread, instants, and every flow with both of its ends."""
import json
import sys

from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

trace = pb.Trace()
with open(sys.argv[1], "rb") as f:
    trace.ParseFromString(f.read())

threads, processes = {}, {}
open_slices, slices, unbalanced = {}, {}, 0
instants = []
flow_out, flow_in = {}, {}
sequence_ids = set()
for packet in trace.packet:
    sequence_ids.add(packet.trusted_packet_sequence_id)
    if packet.HasField("track_descriptor"):
        d = packet.track_descriptor
        if d.HasField("thread"):
            threads.setdefault(str(d.uuid), {"pid": d.thread.pid, "tid": d.thread.tid, "name": d.thread.thread_name})
        elif d.HasField("process"):
            processes.setdefault(str(d.uuid), {"pid": d.process.pid, "name": d.process.process_name})
    if not packet.HasField("track_event"):
        continue
    e = packet.track_event
    track = str(e.track_uuid)
    annotations = {a.name: (a.string_value if a.HasField("string_value") else a.int_value) for a in e.debug_annotations}
    if e.type == pb.TrackEvent.TYPE_SLICE_BEGIN:
        open_slices.setdefault(track, []).append(packet.timestamp)
        slices.setdefault(track, []).append({"name": e.name, "ts": packet.timestamp, "args": annotations})
    elif e.type == pb.TrackEvent.TYPE_SLICE_END:
        stack = open_slices.get(track)
        if not stack or stack.pop() > packet.timestamp:
            unbalanced += 1
    elif e.type == pb.TrackEvent.TYPE_INSTANT:
        instants.append({"track": track, "ts": packet.timestamp, "name": e.name,
                         "category": list(e.categories), "args": annotations})
        for flow in e.flow_ids:
            flow_out.setdefault(str(flow), []).append((track, packet.timestamp))
        for flow in e.terminating_flow_ids:
            flow_in.setdefault(str(flow), []).append((track, packet.timestamp))

flows = []
for flow in sorted(set(flow_out) | set(flow_in), key=int):
    out, into = flow_out.get(flow, []), flow_in.get(flow, [])
    flows.append({"id": int(flow), "from": out, "to": into})
unbalanced += sum(len(stack) for stack in open_slices.values())
print(json.dumps({
    "threads": threads,
    "processes": processes,
    "slices": slices,
    "unbalanced_slices": unbalanced,
    "instants": instants,
    "flows": flows,
    "sequence_ids": sorted(sequence_ids),
}))
