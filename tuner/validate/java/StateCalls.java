/*
 * One replayed state call on Flink's own keyed-state objects: the switch the replay job
 * (ReplayJob, a real Flink job) and the backend harness (BackendHarness, the state backend without
 * a job) share, so that both engines make exactly the same Flink calls for a row of the stream.
 *
 * Compiled with either of them by tuner.validate.flink.compile_java (with_sources).
 */

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

import org.apache.flink.api.common.state.AggregatingState;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.ReducingState;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.streaming.api.operators.InternalTimerService;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;

final class StateCalls {
    private static final int GET = ReplayJob.GET, UPDATE = ReplayJob.UPDATE, ADD = ReplayJob.ADD,
            CLEAR = ReplayJob.CLEAR, PUT = ReplayJob.PUT, REMOVE = ReplayJob.REMOVE,
            CONTAINS = ReplayJob.CONTAINS, ITERATE = ReplayJob.ITERATE,
            REGISTER_TIMER = ReplayJob.REGISTER_TIMER, DELETE_TIMER = ReplayJob.DELETE_TIMER,
            FIRE_TIMER = ReplayJob.FIRE_TIMER;

    private StateCalls() {
    }

    /**
     * Call {@code state} (the state object of {@code s}, its namespace already set) with op code
     * {@code op}; a written value is {@code valueSize} bytes once serialized, taken from
     * {@code payload} at the row's offset, a map call's user key is {@code userKey}'s id.
     */
    @SuppressWarnings("unchecked")
    static void call(ReplayJob.StateSpec s, Object state, int op, byte[] payload, long row,
            int valueSize, long userKey) throws Exception {
        switch (s.kind) {
            case "value": {
                ValueState<byte[]> v = (ValueState<byte[]>) state;
                if (op == GET) {
                    v.value();
                } else if (op == UPDATE) {
                    v.update(value(payload, row, valueSize));
                } else if (op == CLEAR) {
                    v.clear();
                } else {
                    unsupported(s, op);
                }
                return;
            }
            case "list": {
                ListState<byte[]> l = (ListState<byte[]>) state;
                if (op == GET) {
                    Iterable<byte[]> it = l.get();
                    if (it != null) {
                        for (byte[] ignored : it) {
                            // RocksDBListState.get deserializes eagerly; walk it anyway.
                        }
                    }
                } else if (op == ADD) {
                    l.add(value(payload, row, valueSize));
                } else if (op == UPDATE) {
                    List<byte[]> one = new ArrayList<>(1);
                    one.add(value(payload, row, valueSize));
                    l.update(one);
                } else if (op == CLEAR) {
                    l.clear();
                } else {
                    unsupported(s, op);
                }
                return;
            }
            case "map": {
                MapState<Object, byte[]> m = (MapState<Object, byte[]>) state;
                if (op == GET) {
                    m.get(userKey(s, Math.max(0, userKey), payload));
                } else if (op == PUT) {
                    m.put(userKey(s, Math.max(0, userKey), payload),
                            value(payload, row, valueSize));
                } else if (op == REMOVE) {
                    m.remove(userKey(s, Math.max(0, userKey), payload));
                } else if (op == CONTAINS) {
                    m.contains(userKey(s, Math.max(0, userKey), payload));
                } else if (op == ITERATE) {
                    Iterator<Map.Entry<Object, byte[]>> it = m.iterator();
                    while (it.hasNext()) {
                        it.next().getValue();
                    }
                } else if (op == CLEAR) {
                    m.clear();
                } else {
                    unsupported(s, op);
                }
                return;
            }
            case "reducing": {
                ReducingState<byte[]> rs = (ReducingState<byte[]>) state;
                if (op == GET) {
                    rs.get();
                } else if (op == ADD || op == UPDATE) {
                    rs.add(value(payload, row, valueSize));
                } else if (op == CLEAR) {
                    rs.clear();
                } else {
                    unsupported(s, op);
                }
                return;
            }
            case "aggregating": {
                AggregatingState<byte[], byte[]> a = (AggregatingState<byte[], byte[]>) state;
                if (op == GET) {
                    a.get();
                } else if (op == ADD || op == UPDATE) {
                    a.add(value(payload, row, valueSize));
                } else if (op == CLEAR) {
                    a.clear();
                } else {
                    unsupported(s, op);
                }
                return;
            }
            default:
                unsupported(s, op);
        }
    }

    /**
     * A timer call of the timer state {@code s}: window timers (namespace: the window), and
     * user timers in event or processing time. FIRE_TIMER of an event-time timer is a no-op
     * here: the watermark fires the real timer. A processing-time timer is registered
     * {@link ReplayJob#PROCESSING_OFFSET} ahead, so wall time never fires it; its FIRE_TIMER row
     * deletes it instead (the same RocksDB delete a fire does).
     */
    static void timer(ReplayJob.StateSpec s, int op, long nsStart, long nsEnd, long ts,
            InternalTimerService<TimeWindow> windowTimers,
            InternalTimerService<VoidNamespace> userTimers) {
        if (s.name.endsWith("window-timers")) {
            TimeWindow w = new TimeWindow(nsStart, nsEnd);
            if (op == REGISTER_TIMER) {
                windowTimers.registerEventTimeTimer(w, ts);
            } else if (op == DELETE_TIMER) {
                windowTimers.deleteEventTimeTimer(w, ts);
            } else if (op != FIRE_TIMER) {
                unsupported(s, op);
            }
            return;
        }
        if (s.name.contains("/processing_")) {
            long at = ts + ReplayJob.PROCESSING_OFFSET;
            if (op == REGISTER_TIMER) {
                userTimers.registerProcessingTimeTimer(VoidNamespace.INSTANCE, at);
            } else if (op == DELETE_TIMER || op == FIRE_TIMER) {
                userTimers.deleteProcessingTimeTimer(VoidNamespace.INSTANCE, at);
            } else {
                unsupported(s, op);
            }
            return;
        }
        if (op == REGISTER_TIMER) {
            userTimers.registerEventTimeTimer(VoidNamespace.INSTANCE, ts);
        } else if (op == DELETE_TIMER) {
            userTimers.deleteEventTimeTimer(VoidNamespace.INSTANCE, ts);
        } else if (op != FIRE_TIMER) {
            unsupported(s, op);
        }
    }

    /**
     * A written value: BytePrimitiveArraySerializer writes a 4-byte length, so valueSize - 4
     * payload bytes make the serialized value exactly valueSize bytes, taken from the replay's
     * payload pool at the replay's offsets (same bytes, same compressibility).
     */
    static byte[] value(byte[] payload, long row, int valueSize) {
        int n = Math.max(0, valueSize - 4);
        long off = (row * 7919L) % (payload.length - valueSize);
        byte[] out = new byte[n];
        System.arraycopy(payload, (int) off, out, 0, n);
        return out;
    }

    /** A map user key: a long when 8 bytes, else userKeySize - 4 bytes (a byte[] user key
     *  carries a 4-byte length): up to 8 of them the id, big-endian, so ids sort in numeric
     *  order; beyond 8, bytes of {@code payload} chosen by the id, as the replay's user keys
     *  (tuner.flink.keys.KeyLayout.serialize_user_keys). Zero padding there would compress and
     *  prefix-encode away, and a job's wide user keys (a join's whole rows) do not. */
    static Object userKey(ReplayJob.StateSpec s, long id, byte[] payload) {
        if (s.userKeySize == 8) {
            return id;
        }
        int n = Math.max(1, s.userKeySize - 4);
        byte[] b = new byte[n];
        int idBytes = Math.min(n, 8);
        long v = id;
        for (int i = idBytes - 1; i >= 0; i--) {
            b[i] = (byte) v;
            v >>>= 8;
        }
        if (n > 8) {
            int fill = n - 8;
            long off = Math.floorMod(id * 7919L + 13L, (long) (payload.length - fill));
            System.arraycopy(payload, (int) off, b, 8, fill);
        }
        return b;
    }

    static void unsupported(ReplayJob.StateSpec s, int op) {
        throw new IllegalArgumentException("'" + s.name + "' (" + s.kind
                + ") has no call with op code " + op);
    }
}
