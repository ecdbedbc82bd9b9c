/*
 * tuner's ground-truth job: replays an operation stream (one Flink state call per record) through
 * Flink's own keyed-state API on the RocksDB state backend, and reports what it measured.
 *
 * Compiled by tuner.validate.flink against <pyflink>/lib/* and run as
 *     java -cp '<pyflink>/lib/*:<classes>' ReplayJob <job.properties>
 * The properties file (written by tuner.validate.stream.write_job_spec) names the binary stream
 * file, the state table, the Flink configuration layers and the result file.
 *
 * Design (each choice has a reason; tuner/validate/README-style notes live in flink.py):
 *  - A MiniCluster built here from the job's Configuration, as LocalExecutor would build it, so
 *    that this process can trigger checkpoints (MiniCluster.triggerCheckpoint) and read Flink's
 *    checkpoint statistics from the archived execution graph after the job.
 *  - Source: DataGeneratorSource (FLIP-27) whose generator function reads record i of the
 *    memory-mapped stream file; parallelism 1 keeps the file order.
 *  - Watermarks: after each record, ts(next record) - 1 when that is larger than the last one
 *    emitted, so a timer at T fires just before the first record with ts > T (the generator's
 *    model: watermark = ts - 1 of the current record).
 *  - One custom keyed operator (WindowOperator's way of working with state): states are created
 *    through getOrCreateKeyedState(namespaceSerializer, descriptor) and windowed states get their
 *    namespace (a TimeWindow) set per call, exactly as WindowOperator does.
 *  - Checkpoints are triggered by event time, not wall-clock: the source asks for one when it
 *    emits the first measured row with ts >= first measured ts + k * interval (what the replay
 *    does); the main thread triggers it through the MiniCluster.
 *  - With restore.measure=true, a real restore follows (tuner validate --restore): the source
 *    idles after the last row instead of ending, because a job that finishes discards its
 *    checkpoints even when they are retained; main takes one more checkpoint of the state at
 *    the end of the measured phase, cancels the job (the checkpoint is retained on
 *    cancellation), submits the same job graph restored from that checkpoint, and keeps how
 *    long the keyed operator's subtask was INITIALIZING (Flink restores its keyed state backend
 *    then), from Flink's own execution graph, as its web UI shows it; then cancels it too.
 */

import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.io.Writer;
import java.lang.management.ManagementFactory;
import java.lang.reflect.Field;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.functions.ReduceFunction;
import org.apache.flink.api.common.state.AggregatingState;
import org.apache.flink.api.common.state.AggregatingStateDescriptor;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ReducingState;
import org.apache.flink.api.common.state.ReducingStateDescriptor;
import org.apache.flink.api.common.state.State;
import org.apache.flink.api.common.state.StateDescriptor;
import org.apache.flink.api.common.state.StateTtlConfig;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.common.typeutils.base.LongSerializer;
import org.apache.flink.api.common.typeutils.base.array.BytePrimitiveArraySerializer;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.GlobalConfiguration;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.apache.flink.runtime.checkpoint.AbstractCheckpointStats;
import org.apache.flink.runtime.checkpoint.CompletedCheckpointStats;
import org.apache.flink.runtime.checkpoint.CheckpointStatsSnapshot;
import org.apache.flink.runtime.checkpoint.TaskStateStats;
import org.apache.flink.runtime.execution.ExecutionState;
import org.apache.flink.runtime.executiongraph.AccessExecution;
import org.apache.flink.runtime.executiongraph.AccessExecutionGraph;
import org.apache.flink.runtime.executiongraph.AccessExecutionJobVertex;
import org.apache.flink.runtime.jobgraph.JobGraph;
import org.apache.flink.runtime.jobgraph.SavepointRestoreSettings;
import org.apache.flink.runtime.jobmaster.JobResult;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.flink.runtime.state.KeyedStateBackend;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.runtime.state.internal.InternalKvState;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.KeyedStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.graph.StreamGraph;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.InternalTimer;
import org.apache.flink.streaming.api.operators.InternalTimerService;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.operators.Triggerable;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

public final class ReplayJob {

    // ---------------------------------------------------------------------------------------
    // The stream file (tuner.validate.stream documents the same layout).

    static final byte[] MAGIC = "TUNROPS\0".getBytes(StandardCharsets.US_ASCII);
    static final int FORMAT_VERSION = 1;
    static final int HEADER_BYTES = 64;
    static final int RECORD_BYTES = 56;

    // Fields of a record as it travels through the job (a long[]; Flink serializes it with
    // LongPrimitiveArraySerializer, no Kryo).
    static final int F_TS = 0, F_STATE = 1, F_OP = 2, F_KEY = 3, F_NS_START = 4, F_NS_END = 5,
            F_USER_KEY = 6, F_VALUE_SIZE = 7, F_TIMER_TS = 8, F_NEXT_TS = 9, F_ROW = 10,
            F_PHASE = 11, N_FIELDS = 12;
    static final long NO_NEXT = Long.MIN_VALUE;

    // tuner.trace.ops.Op codes.
    static final int GET = 0, UPDATE = 1, ADD = 2, CLEAR = 3, PUT = 4, REMOVE = 5, CONTAINS = 6,
            ITERATE = 7, REGISTER_TIMER = 8, DELETE_TIMER = 9, FIRE_TIMER = 10, N_OPS = 11;
    // Not a state call: what the source emits after the last row while a restore is measured
    // (the job must keep running for its checkpoint to be retained).
    static final long IDLE = -1;

    // Processing-time timers are registered this far in the future so that Flink's wall-clock
    // never fires them during the run; the stream's FIRE_TIMER rows remove them instead (the
    // same RocksDB delete a fire does). Event time in the stream starts at 0, wall time does not.
    static final long PROCESSING_OFFSET = 1L << 60;

    /** Random access to the rows of a stream file, mapped in windows (files may exceed 2 GiB). */
    static final class OpsFile implements AutoCloseable {
        private static final long WINDOW_ROWS = (1L << 30) / RECORD_BYTES;
        final long preloadRows;
        final long measureRows;
        final int nStates;
        private final FileChannel channel;
        private MappedByteBuffer window;
        private long windowStart = -1;
        private long windowRows = 0;

        OpsFile(String path) throws IOException {
            channel = FileChannel.open(Paths.get(path), StandardOpenOption.READ);
            MappedByteBuffer head = channel.map(FileChannel.MapMode.READ_ONLY, 0, HEADER_BYTES);
            head.order(ByteOrder.LITTLE_ENDIAN);
            byte[] magic = new byte[8];
            head.get(magic);
            if (!java.util.Arrays.equals(magic, MAGIC)) {
                throw new IOException(path + ": not a tuner operation stream (bad magic)");
            }
            int version = head.getInt(8);
            int recordBytes = head.getInt(12);
            if (version != FORMAT_VERSION || recordBytes != RECORD_BYTES) {
                throw new IOException(path + ": stream format " + version + "/" + recordBytes
                        + ", this job reads " + FORMAT_VERSION + "/" + RECORD_BYTES);
            }
            preloadRows = head.getLong(16);
            measureRows = head.getLong(24);
            nStates = head.getInt(32);
            long expected = HEADER_BYTES + (preloadRows + measureRows) * RECORD_BYTES;
            if (channel.size() != expected) {
                throw new IOException(path + ": " + channel.size() + " bytes, header says "
                        + expected);
            }
        }

        long rows() {
            return preloadRows + measureRows;
        }

        private void mapWindow(long row) throws IOException {
            windowStart = row;
            windowRows = Math.min(WINDOW_ROWS, rows() - row);
            window = channel.map(FileChannel.MapMode.READ_ONLY,
                    HEADER_BYTES + row * RECORD_BYTES, windowRows * RECORD_BYTES);
            window.order(ByteOrder.LITTLE_ENDIAN);
        }

        private int offset(long row) throws IOException {
            if (row < windowStart || row >= windowStart + windowRows) {
                mapWindow(row);
            }
            return (int) ((row - windowStart) * RECORD_BYTES);
        }

        long ts(long row) throws IOException {
            return window(row).getLong(offset(row));
        }

        private MappedByteBuffer window(long row) throws IOException {
            offset(row);
            return window;
        }

        long[] read(long row) throws IOException {
            int o = offset(row);
            MappedByteBuffer w = window;
            long[] r = new long[N_FIELDS];
            r[F_TS] = w.getLong(o);
            r[F_KEY] = w.getLong(o + 8);
            r[F_NS_START] = w.getLong(o + 16);
            r[F_NS_END] = w.getLong(o + 24);
            r[F_USER_KEY] = w.getLong(o + 32);
            r[F_TIMER_TS] = w.getLong(o + 40);
            r[F_VALUE_SIZE] = w.getInt(o + 48);
            r[F_STATE] = w.getShort(o + 52);
            r[F_OP] = w.get(o + 54);
            r[F_PHASE] = w.get(o + 55);
            r[F_ROW] = row;
            r[F_NEXT_TS] = row + 1 < rows() ? ts(row + 1) : NO_NEXT;
            return r;
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }

    // ---------------------------------------------------------------------------------------
    // What the job spec says about each state (tuner.trace.ops.StateInfo).

    static final class StateSpec implements Serializable {
        private static final long serialVersionUID = 1L;
        final String name;
        final String kind;
        final String keyType;
        final int keySize;
        final boolean windowed;
        final int userKeySize;
        final boolean ttl;

        StateSpec(Properties p, int i) {
            String k = "state." + i + ".";
            name = req(p, k + "name");
            kind = req(p, k + "kind");
            keyType = req(p, k + "key_type");
            keySize = Integer.parseInt(req(p, k + "key_size"));
            windowed = Boolean.parseBoolean(req(p, k + "windowed"));
            userKeySize = Integer.parseInt(req(p, k + "user_key_size"));
            ttl = Boolean.parseBoolean(req(p, k + "ttl"));
        }
    }

    static String req(Properties p, String key) {
        String v = p.getProperty(key);
        if (v == null) {
            throw new IllegalArgumentException("job spec lacks " + key);
        }
        return v;
    }

    // ---------------------------------------------------------------------------------------
    // Shared between the source, the operator and main: one JVM, one class loader (a job
    // without user jars resolves its classes through the application class path).

    /** Event times at which the source asked for a checkpoint. */
    static final LinkedBlockingQueue<Long> CHECKPOINT_REQUESTS = new LinkedBlockingQueue<>();
    /** The operator's report, filled when it has processed the last row. */
    static volatile Map<String, Object> OPERATOR_REPORT;
    /** Rows processed at each checkpoint's synchronous part (checkpoint id -> row). */
    static final Map<Long, Long> SNAPSHOT_ROWS = new java.util.concurrent.ConcurrentHashMap<>();

    // ---------------------------------------------------------------------------------------
    // Source

    /** Reads row i of the stream; asks for checkpoints by event time in the measured phase. */
    static final class StreamRows implements GeneratorFunction<Long, long[]> {
        private static final long serialVersionUID = 1L;
        private final String path;
        private final long intervalMs;
        private final long totalRows;
        private transient OpsFile file;
        private transient long nextCheckpoint;
        private transient boolean started;

        StreamRows(String path, long intervalMs, long totalRows) {
            this.path = path;
            this.intervalMs = intervalMs;
            this.totalRows = totalRows;
        }

        @Override
        public void open(SourceReaderContext context) throws Exception {
            file = new OpsFile(path);
            started = false;
        }

        @Override
        public long[] map(Long index) throws Exception {
            if (index >= totalRows) {
                // Past the stream (a restore is measured): a slow trickle of rows that are no
                // state call, so that barriers still flow and the job stays up until cancelled.
                Thread.sleep(1);
                long[] idle = new long[N_FIELDS];
                idle[F_OP] = IDLE;
                idle[F_TS] = Long.MIN_VALUE;
                idle[F_NEXT_TS] = NO_NEXT;
                return idle;
            }
            long[] r = file.read(index);
            if (r[F_PHASE] == 1 && intervalMs > 0) {
                long ts = r[F_TS];
                if (!started) {
                    // As the replay: the first checkpoint falls one interval after the first
                    // measured row's time.
                    started = true;
                    nextCheckpoint = ts + intervalMs;
                } else if (ts >= nextCheckpoint) {
                    CHECKPOINT_REQUESTS.offer(ts);
                    while (nextCheckpoint <= ts) {
                        nextCheckpoint += intervalMs;
                    }
                }
            }
            return r;
        }

        @Override
        public void close() throws Exception {
            if (file != null) {
                file.close();
            }
        }
    }

    /** Watermark ts(next row) - 1 after each row, emitted only when it advances. */
    static final class NextRowWatermarks implements WatermarkGenerator<long[]> {
        private long last = Long.MIN_VALUE;

        @Override
        public void onEvent(long[] r, long eventTimestamp, WatermarkOutput output) {
            long next = r[F_NEXT_TS];
            if (next != NO_NEXT && next - 1 > last) {
                last = next - 1;
                output.emitWatermark(new Watermark(last));
            }
        }

        @Override
        public void onPeriodicEmit(WatermarkOutput output) {
            // Punctuated: everything happens in onEvent.
        }
    }

    static final class LongKey implements KeySelector<long[], Long> {
        private static final long serialVersionUID = 1L;

        @Override
        public Long getKey(long[] r) {
            return r[F_KEY];
        }
    }

    /** tuner.flink.keys.render_string_keys: the id as zero-padded decimal of keySize chars. */
    static final class StringKey implements KeySelector<long[], String> {
        private static final long serialVersionUID = 1L;
        private final int size;

        StringKey(int size) {
            this.size = size;
        }

        @Override
        public String getKey(long[] r) {
            String digits = Long.toString(r[F_KEY]);
            if (digits.length() >= size) {
                return digits.substring(digits.length() - size);
            }
            StringBuilder b = new StringBuilder(size);
            for (int i = digits.length(); i < size; i++) {
                b.append('0');
            }
            return b.append(digits).toString();
        }
    }

    // ---------------------------------------------------------------------------------------
    // State functions: the payload of the latest call wins (its size is what the stream says).

    static final class KeepLatest implements ReduceFunction<byte[]> {
        private static final long serialVersionUID = 1L;

        @Override
        public byte[] reduce(byte[] a, byte[] b) {
            return b;
        }
    }

    static final class LatestAggregate implements AggregateFunction<byte[], byte[], byte[]> {
        private static final long serialVersionUID = 1L;

        @Override
        public byte[] createAccumulator() {
            return new byte[0];
        }

        @Override
        public byte[] add(byte[] value, byte[] acc) {
            return value;
        }

        @Override
        public byte[] getResult(byte[] acc) {
            return acc;
        }

        @Override
        public byte[] merge(byte[] a, byte[] b) {
            return b;
        }
    }

    // ---------------------------------------------------------------------------------------
    // The operator

    static final class ReplayOperator extends AbstractStreamOperator<Long>
            implements OneInputStreamOperator<long[], Long> {
        private static final long serialVersionUID = 1L;
        // RocksDB ticker names (statistics.h), so the numbers line up with the replay's.
        private static final String[][] TICKERS = {
            {"BLOCK_CACHE_HIT", "rocksdb.block.cache.hit"},
            {"BLOCK_CACHE_MISS", "rocksdb.block.cache.miss"},
            {"BLOCK_CACHE_INDEX_MISS", "rocksdb.block.cache.index.miss"},
            {"BLOCK_CACHE_FILTER_MISS", "rocksdb.block.cache.filter.miss"},
            {"BLOCK_CACHE_DATA_MISS", "rocksdb.block.cache.data.miss"},
            {"BYTES_READ", "rocksdb.bytes.read"},
            {"BYTES_WRITTEN", "rocksdb.bytes.written"},
            {"ITER_BYTES_READ", "rocksdb.db.iter.bytes.read"},
            {"COMPACT_READ_BYTES", "rocksdb.compact.read.bytes"},
            {"COMPACT_WRITE_BYTES", "rocksdb.compact.write.bytes"},
            {"FLUSH_WRITE_BYTES", "rocksdb.flush.write.bytes"},
            {"STALL_MICROS", "rocksdb.stall.micros"},
            {"BLOOM_FILTER_USEFUL", "rocksdb.bloom.filter.useful"},
            {"NUMBER_KEYS_READ", "rocksdb.number.keys.read"},
            {"NUMBER_KEYS_WRITTEN", "rocksdb.number.keys.written"},
            {"LAST_LEVEL_READ_BYTES", "rocksdb.last.level.read.bytes"},
            {"NON_LAST_LEVEL_READ_BYTES", "rocksdb.non.last.level.read.bytes"},
        };
        // DB properties summed over column families at the end of the measured phase.
        private static final String[] PROPERTIES = {
            "rocksdb.block-cache-capacity",
            "rocksdb.block-cache-usage",
            "rocksdb.block-cache-pinned-usage",
            "rocksdb.cur-size-all-mem-tables",
            "rocksdb.estimate-table-readers-mem",
            "rocksdb.total-sst-files-size",
            "rocksdb.estimate-live-data-size",
            "rocksdb.estimate-num-keys",
        };
        private static final String[] SHARED_PROPERTIES = {
            "rocksdb.block-cache-capacity", "rocksdb.block-cache-usage",
            "rocksdb.block-cache-pinned-usage",
        };

        private final StateSpec[] specs;
        private final long preloadRows;
        private final long totalRows;
        private final long settleTimeoutMs;
        private final byte[] payload;

        private transient Object[] states;
        private transient InternalKvState<?, TimeWindow, ?>[] windowed;
        private transient InternalTimerService<TimeWindow> windowTimers;
        private transient InternalTimerService<VoidNamespace> userTimers;
        private transient long[][] counts;
        private transient long processed;
        private transient long measureStartNs;
        // CPU time over the measured phase: the task (operator) thread alone, and the whole JVM
        // (RocksDB's background threads, but also JIT, GC and the rest of the MiniCluster).
        private transient long taskCpuStartNs;
        private transient long processCpuStartNs;
        private transient long firstRowNs;
        private transient long settleNs;
        private transient boolean settled;
        private transient long firesEvent;
        private transient long firesProcessing;
        private transient long firesAfterEnd;
        private transient boolean ended;
        private transient Map<String, Long> tickersBefore;
        private transient org.rocksdb.RocksDB db;
        private transient org.rocksdb.Statistics statistics;
        private transient List<org.rocksdb.ColumnFamilyHandle> handles;

        ReplayOperator(StateSpec[] specs, long preloadRows, long totalRows, long settleTimeoutMs,
                byte[] payload) {
            this.specs = specs;
            this.preloadRows = preloadRows;
            this.totalRows = totalRows;
            this.settleTimeoutMs = settleTimeoutMs;
            this.payload = payload;
        }

        @Override
        @SuppressWarnings("unchecked")
        public void open() throws Exception {
            super.open();
            states = new Object[specs.length];
            windowed = new InternalKvState[specs.length];
            counts = new long[specs.length][N_OPS];
            boolean needWindowTimers = false;
            boolean needUserTimers = false;
            for (int i = 0; i < specs.length; i++) {
                StateSpec s = specs[i];
                if (s.kind.equals("timers")) {
                    if (s.name.endsWith("window-timers")) {
                        needWindowTimers = true;
                    } else {
                        needUserTimers = true;
                    }
                    continue;
                }
                StateDescriptor<?, ?> d = descriptor(s);
                if (s.ttl) {
                    // Expiry follows the stream's explicit CLEARs (event time); Flink's TTL clock
                    // is processing time, so a TTL this long never expires during a run while
                    // the values still carry Flink's TTL timestamp and the compaction filter.
                    d.enableTimeToLive(StateTtlConfig.newBuilder(Duration.ofDays(3650)).build());
                }
                Object state;
                if (s.windowed) {
                    state = getOrCreateKeyedState(new TimeWindow.Serializer(),
                            (StateDescriptor<State, Object>) d);
                    windowed[i] = (InternalKvState<?, TimeWindow, ?>) state;
                } else {
                    state = getOrCreateKeyedState(VoidNamespaceSerializer.INSTANCE,
                            (StateDescriptor<State, Object>) d);
                    ((InternalKvState<?, VoidNamespace, ?>) state)
                            .setCurrentNamespace(VoidNamespace.INSTANCE);
                }
                states[i] = state;
            }
            // Names as WindowOperator ("window-timers") and KeyedProcessOperator ("user-timers")
            // give them: the column families become _timer_state/{event,processing}_<name>.
            if (needWindowTimers) {
                windowTimers = getInternalTimerService("window-timers", new TimeWindow.Serializer(),
                        new Fires<TimeWindow>());
            }
            if (needUserTimers) {
                userTimers = getInternalTimerService("user-timers",
                        VoidNamespaceSerializer.INSTANCE, new Fires<VoidNamespace>());
            }
            attachRocksDB();
        }

        private StateDescriptor<?, ?> descriptor(StateSpec s) {
            TypeSerializer<byte[]> bytes = BytePrimitiveArraySerializer.INSTANCE;
            switch (s.kind) {
                case "value":
                    return new ValueStateDescriptor<>(s.name, bytes);
                case "list":
                    return new ListStateDescriptor<>(s.name, bytes);
                case "map":
                    if (s.userKeySize == 8) {
                        return new MapStateDescriptor<>(s.name, LongSerializer.INSTANCE, bytes);
                    }
                    return new MapStateDescriptor<>(s.name, BytePrimitiveArraySerializer.INSTANCE,
                            bytes);
                case "reducing":
                    return new ReducingStateDescriptor<>(s.name, new KeepLatest(), bytes);
                case "aggregating":
                    return new AggregatingStateDescriptor<>(s.name, new LatestAggregate(), bytes);
                default:
                    throw new IllegalArgumentException("state " + s.name + ": unknown kind "
                            + s.kind);
            }
        }

        /** The backend's RocksDB instance and statistics, read by reflection (no public API). */
        private void attachRocksDB() throws Exception {
            KeyedStateBackend<?> backend = getKeyedStateBackend();
            Class<?> c = backend.getClass();
            while (c != null && !c.getName().endsWith(".RocksDBKeyedStateBackend")) {
                c = c.getSuperclass();
            }
            if (c == null) {
                throw new IllegalStateException("the keyed state backend is "
                        + backend.getClass().getName() + ", not RocksDB (is "
                        + "state.changelog.enabled set?)");
            }
            db = (org.rocksdb.RocksDB) field(c, "db").get(backend);
            Object monitor = field(c, "nativeMetricMonitor").get(backend);
            if (monitor != null) {
                statistics = (org.rocksdb.Statistics) field(monitor.getClass(), "statistics")
                        .get(monitor);
            }
            handles = new ArrayList<>();
            Map<?, ?> infos = (Map<?, ?>) field(c, "kvStateInformation").get(backend);
            for (Object info : infos.values()) {
                handles.add((org.rocksdb.ColumnFamilyHandle) field(info.getClass(),
                        "columnFamilyHandle").get(info));
            }
        }

        private static Field field(Class<?> c, String name) throws NoSuchFieldException {
            Field f = c.getDeclaredField(name);
            f.setAccessible(true);
            return f;
        }

        private final class Fires<N> implements Triggerable<Object, N> {
            @Override
            public void onEventTime(InternalTimer<Object, N> timer) {
                // The stream carries what a fire does to state (the window's GET and CLEAR) as
                // its own rows; here Flink has already removed the timer from RocksDB.
                if (ended) {
                    firesAfterEnd++;
                } else {
                    firesEvent++;
                }
            }

            @Override
            public void onProcessingTime(InternalTimer<Object, N> timer) {
                firesProcessing++;
            }
        }

        @Override
        public void processElement(StreamRecord<long[]> element) throws Exception {
            long[] r = element.getValue();
            if (r[F_OP] == IDLE) {
                return;
            }
            if (processed == 0) {
                firstRowNs = System.nanoTime();
            }
            if (processed == preloadRows) {
                beginMeasure();
            }
            execute(r);
            processed++;
            if (processed == totalRows) {
                endMeasure();
            }
        }

        @SuppressWarnings("unchecked")
        private void execute(long[] r) throws Exception {
            int si = (int) r[F_STATE];
            int op = (int) r[F_OP];
            StateSpec s = specs[si];
            counts[si][op]++;
            if (s.kind.equals("timers")) {
                StateCalls.timer(s, op, r[F_NS_START], r[F_NS_END], r[F_TIMER_TS], windowTimers,
                        userTimers);
                return;
            }
            if (s.windowed) {
                windowed[si].setCurrentNamespace(new TimeWindow(r[F_NS_START], r[F_NS_END]));
            }
            StateCalls.call(s, states[si], op, payload, r[F_ROW], (int) r[F_VALUE_SIZE],
                    r[F_USER_KEY]);
        }

        /** As the replay: flush the preload, wait for compactions to settle, then measure. */
        private void beginMeasure() throws Exception {
            long t = System.nanoTime();
            if (processed > 0) {
                try (org.rocksdb.FlushOptions fo = new org.rocksdb.FlushOptions()
                        .setWaitForFlush(true)) {
                    db.flush(fo, handles);
                }
                settled = waitForBackground();
            } else {
                settled = true;
            }
            settleNs = System.nanoTime() - t;
            tickersBefore = tickers();
            taskCpuStartNs = taskCpuNs();
            processCpuStartNs = processCpuNs();
            measureStartNs = System.nanoTime();
        }

        private boolean waitForBackground() throws Exception {
            long deadline = System.nanoTime() + settleTimeoutMs * 1_000_000L;
            while (System.nanoTime() < deadline) {
                long pending = 0;
                for (org.rocksdb.ColumnFamilyHandle h : handles) {
                    pending += db.getLongProperty(h, "rocksdb.compaction-pending");
                }
                pending += db.getLongProperty("rocksdb.num-running-compactions");
                pending += db.getLongProperty("rocksdb.num-running-flushes");
                if (pending == 0) {
                    return true;
                }
                Thread.sleep(20);
            }
            return false;
        }

        private Map<String, Long> tickers() {
            Map<String, Long> out = new LinkedHashMap<>();
            if (statistics == null) {
                return out;
            }
            for (String[] t : TICKERS) {
                try {
                    out.put(t[1], statistics.getTickerCount(
                            org.rocksdb.TickerType.valueOf(t[0])));
                } catch (IllegalArgumentException absent) {
                    // A ticker this RocksDB build does not have: leave it out.
                }
            }
            return out;
        }

        private static long taskCpuNs() {
            return java.lang.management.ManagementFactory.getThreadMXBean()
                    .getCurrentThreadCpuTime();
        }

        private static long processCpuNs() {
            java.lang.management.OperatingSystemMXBean os =
                    java.lang.management.ManagementFactory.getOperatingSystemMXBean();
            if (os instanceof com.sun.management.OperatingSystemMXBean) {
                return ((com.sun.management.OperatingSystemMXBean) os).getProcessCpuTime();
            }
            return -1;
        }

        private void endMeasure() throws Exception {
            long measureNs = System.nanoTime() - measureStartNs;
            long taskCpuNs = taskCpuNs() - taskCpuStartNs;
            long processCpuNs = processCpuNs() - processCpuStartNs;
            ended = true;
            Map<String, Long> after = tickers();
            Map<String, Object> delta = new LinkedHashMap<>();
            for (Map.Entry<String, Long> e : after.entrySet()) {
                delta.put(e.getKey(), e.getValue() - tickersBefore.getOrDefault(e.getKey(), 0L));
            }
            Map<String, Object> props = new LinkedHashMap<>();
            for (String p : PROPERTIES) {
                boolean shared = java.util.Arrays.asList(SHARED_PROPERTIES).contains(p);
                long v = 0;
                try {
                    if (shared) {
                        v = db.getLongProperty(p); // one cache shared by every column family
                    } else {
                        for (org.rocksdb.ColumnFamilyHandle h : handles) {
                            v += db.getLongProperty(h, p);
                        }
                    }
                    props.put(p, v);
                } catch (org.rocksdb.RocksDBException unknown) {
                    // Property not supported by this build.
                }
            }
            List<Object> perState = new ArrayList<>();
            for (int i = 0; i < specs.length; i++) {
                Map<String, Object> c = new LinkedHashMap<>();
                c.put("state", specs[i].name);
                List<Object> ops = new ArrayList<>();
                for (long n : counts[i]) {
                    ops.add(n);
                }
                c.put("ops", ops);
                perState.add(c);
            }
            Map<String, Object> rep = new LinkedHashMap<>();
            rep.put("rows", processed);
            rep.put("preload_rows", preloadRows);
            rep.put("measure_rows", processed - preloadRows);
            rep.put("measure_s", measureNs / 1e9);
            rep.put("task_cpu_s", taskCpuNs / 1e9);
            rep.put("process_cpu_s", processCpuNs / 1e9);
            rep.put("settle_s", settleNs / 1e9);
            rep.put("preload_s", (measureStartNs - firstRowNs - settleNs) / 1e9);
            rep.put("settled", settled);
            rep.put("timer_fires_event", firesEvent);
            rep.put("timer_fires_processing", firesProcessing);
            rep.put("counts", perState);
            rep.put("tickers", delta);
            rep.put("properties", props);
            OPERATOR_REPORT = rep;
        }

        @Override
        public void snapshotState(StateSnapshotContext context) throws Exception {
            super.snapshotState(context);
            SNAPSHOT_ROWS.put(context.getCheckpointId(), processed);
        }

        @Override
        public void close() throws Exception {
            Map<String, Object> rep = OPERATOR_REPORT;
            if (rep != null) {
                // Fires after the last row: the end of input's final watermark.
                rep.put("timer_fires_after_end", firesAfterEnd);
            }
            super.close();
        }
    }

    // ---------------------------------------------------------------------------------------
    // main

    public static void main(String[] args) throws Exception {
        long mainStartMs = System.currentTimeMillis();
        if (args.length != 1) {
            System.err.println("usage: ReplayJob <job.properties>");
            System.exit(2);
        }
        Properties spec = new Properties();
        try (InputStream in = Files.newInputStream(Paths.get(args[0]))) {
            spec.load(in);
        }
        String opsPath = req(spec, "ops.file");
        Path resultPath = Paths.get(req(spec, "result.file"));
        int nStates = Integer.parseInt(req(spec, "states.count"));
        StateSpec[] specs = new StateSpec[nStates];
        for (int i = 0; i < nStates; i++) {
            specs[i] = new StateSpec(spec, i);
        }
        long intervalMs = Long.parseLong(req(spec, "checkpoint.interval_ms"));
        long settleTimeoutMs = Long.parseLong(spec.getProperty("settle.timeout_ms", "120000"));
        int maxParallelism = Integer.parseInt(req(spec, "max_parallelism"));
        byte[] payload = Files.readAllBytes(Paths.get(req(spec, "payload.file")));

        long preloadRows;
        long totalRows;
        try (OpsFile f = new OpsFile(opsPath)) {
            if (f.nStates != nStates) {
                throw new IllegalArgumentException("stream names " + f.nStates
                        + " states, the job spec " + nStates);
            }
            preloadRows = f.preloadRows;
            totalRows = f.rows();
        }
        if (totalRows == preloadRows) {
            throw new IllegalArgumentException("the stream has no measured rows");
        }

        Configuration conf = configuration(spec);

        String keyType = specs[0].keyType;
        int keySize = specs[0].keySize;
        for (StateSpec s : specs) {
            if (!s.keyType.equals(keyType) || (keyType.equals("string") && s.keySize != keySize)) {
                throw new IllegalArgumentException("one keyed operator has one key type; state "
                        + s.name + " has " + s.keyType + "/" + s.keySize + ", state "
                        + specs[0].name + " " + keyType + "/" + keySize);
            }
        }

        boolean measureRestore = Boolean.parseBoolean(spec.getProperty("restore.measure", "false"));
        if (measureRestore) {
            // A job that finishes discards its checkpoints, retained or not; a cancelled one
            // keeps them.
            conf.setString("execution.checkpointing.externalized-checkpoint-retention",
                    "RETAIN_ON_CANCELLATION");
        }
        MiniClusterConfiguration mcc = new MiniClusterConfiguration.Builder()
                .setConfiguration(conf)
                .setNumTaskManagers(1)
                .setNumSlotsPerTaskManager(1)
                .build();
        Map<String, Object> result = new LinkedHashMap<>();
        long jvmStartMs = ManagementFactory.getRuntimeMXBean().getStartTime();
        result.put("jvm_to_main_s", (mainStartMs - jvmStartMs) / 1e3);
        long clusterStart = System.nanoTime();
        try (MiniCluster cluster = new MiniCluster(mcc)) {
            cluster.start();
            result.put("cluster_start_s", (System.nanoTime() - clusterStart) / 1e9);

            JobGraph jobGraph = jobGraph(conf, opsPath, intervalMs, measureRestore, totalRows,
                    maxParallelism, keyType, keySize, specs, preloadRows, settleTimeoutMs, payload);
            long jobStart = System.nanoTime();
            JobID jobId = cluster.submitJob(jobGraph).get().getJobID();
            CompletableFuture<JobResult> done = cluster.requestJobResult(jobId);
            List<Object> requests = new ArrayList<>();
            while (!done.isDone() && !(measureRestore && OPERATOR_REPORT != null)) {
                Long ts = CHECKPOINT_REQUESTS.poll(20, TimeUnit.MILLISECONDS);
                if (ts == null) {
                    continue;
                }
                // Requests that queued up while a checkpoint ran are folded into one, as the
                // replay never checkpoints twice at one position.
                Long later;
                while ((later = CHECKPOINT_REQUESTS.poll()) != null) {
                    ts = later;
                }
                Map<String, Object> req = new LinkedHashMap<>();
                req.put("requested_at_ts", ts);
                try {
                    cluster.triggerCheckpoint(jobId).get();
                    req.put("ok", true);
                } catch (Exception e) {
                    // The job may already be finishing; the stats below show what completed.
                    req.put("ok", false);
                    req.put("error", String.valueOf(e.getMessage()));
                }
                requests.add(req);
            }
            long lastCheckpoint = -1;
            String restorePath = null;
            if (measureRestore && !done.isDone()) {
                // The state at the end of the measured phase, as the replay checkpoints it
                // before its restore; then the job is cancelled so that the checkpoint stays.
                restorePath = cluster.triggerCheckpoint(jobId).get();
                result.put("job_s", (System.nanoTime() - jobStart) / 1e9);
                AccessExecutionGraph before = cluster.getArchivedExecutionGraph(jobId).get();
                CompletedCheckpointStats last = before.getCheckpointStatsSnapshot() == null
                        ? null : before.getCheckpointStatsSnapshot().getHistory()
                                .getLatestCompletedCheckpoint();
                if (last == null) {
                    throw new IllegalStateException("no completed checkpoint to restore from");
                }
                lastCheckpoint = last.getCheckpointId();
                cluster.cancelJob(jobId).get();
            }
            JobResult jr = done.get();
            if (!result.containsKey("job_s")) {
                result.put("job_s", (System.nanoTime() - jobStart) / 1e9);
            }
            if (!jr.isSuccess() && lastCheckpoint < 0) {
                Throwable t = jr.getSerializedThrowable()
                        .map(st -> (Throwable) st.deserializeError(ReplayJob.class.getClassLoader()))
                        .orElse(new RuntimeException("job failed without a cause"));
                throw new RuntimeException("the Flink job failed", t);
            }
            result.put("checkpoint_requests", requests);
            AccessExecutionGraph g = cluster.getArchivedExecutionGraph(jobId).get();
            List<Object> stats = checkpointStats(g.getCheckpointStatsSnapshot());
            if (lastCheckpoint >= 0) {
                // The restore's checkpoint is not one of the measured phase's: kept apart.
                final long id = lastCheckpoint;
                stats.removeIf(c -> ((Long) ((Map<?, ?>) c).get("id")) == id);
                Map<String, Object> restore = new LinkedHashMap<>();
                restore.put("checkpoint_id", lastCheckpoint);
                JobGraph again = jobGraph(conf, opsPath, intervalMs, true, totalRows,
                        maxParallelism, keyType, keySize, specs, preloadRows, settleTimeoutMs,
                        payload);
                restore.putAll(restore(cluster, again, restorePath,
                        Long.parseLong(spec.getProperty("restore.timeout_ms", "600000"))));
                result.put("restore", restore);
            }
            result.put("checkpoints", stats);
        }
        Map<String, Object> rep = OPERATOR_REPORT;
        if (rep == null) {
            throw new IllegalStateException("the operator did not report (no rows processed?)");
        }
        result.put("operator", rep);
        result.put("flink_version", org.apache.flink.runtime.util.EnvironmentInformation
                .getVersion());
        Path tmp = resultPath.resolveSibling(resultPath.getFileName() + ".tmp");
        try (Writer w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
            w.write(Json.write(result));
            w.write('\n');
        }
        Files.move(tmp, resultPath, java.nio.file.StandardCopyOption.ATOMIC_MOVE,
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        // MiniCluster leaves non-daemon threads behind on some versions; the result is written.
        System.exit(0);
    }

    /** The job: the stream's rows keyed by the state call's key, into the replay operator. */
    static JobGraph jobGraph(Configuration conf, String opsPath, long intervalMs,
            boolean endless, long totalRows, int maxParallelism, String keyType, int keySize,
            StateSpec[] specs, long preloadRows, long settleTimeoutMs, byte[] payload) {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(1);
        env.setMaxParallelism(maxParallelism);
        @SuppressWarnings("unchecked")
        TypeInformation<long[]> rowType = (TypeInformation<long[]>) (TypeInformation<?>)
                PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO;
        DataGeneratorSource<long[]> source = new DataGeneratorSource<>(
                new StreamRows(opsPath, intervalMs, totalRows),
                endless ? Long.MAX_VALUE : totalRows, rowType);
        WatermarkStrategy<long[]> watermarks = WatermarkStrategy
                .<long[]>forGenerator(ctx -> new NextRowWatermarks())
                .withTimestampAssigner((r, previous) -> r[F_TS]);
        // Fixed uids: the restored job must map the checkpoint's state to the same operators.
        DataStream<long[]> rows = env.fromSource(source, watermarks, "operation-stream")
                .uid("operation-stream");
        ReplayOperator op = new ReplayOperator(specs, preloadRows, totalRows,
                settleTimeoutMs, payload);
        if (keyType.equals("long")) {
            KeyedStream<long[], Long> keyed = rows.keyBy(new LongKey(), Types.LONG);
            keyed.transform("replay-state-calls", Types.LONG, op).uid("replay-state-calls");
        } else {
            KeyedStream<long[], String> keyed = rows.keyBy(new StringKey(keySize),
                    Types.STRING);
            keyed.transform("replay-state-calls", Types.LONG, op).uid("replay-state-calls");
        }
        StreamGraph graph = env.getStreamGraph();
        graph.setJobName("tuner-validate");
        // A JobGraph (with its own fresh JobID) is what both Flink lines accept: 2.x's
        // submitJob takes any ExecutionPlan, 1.20's only a JobGraph.
        return graph.getJobGraph();
    }

    /**
     * Restore {@code graph} (the same job) from the retained checkpoint at {@code path}, wait
     * until its keyed operator runs, and return how long that subtask was initializing
     * (restoring its state backend), by Flink's own state timestamps; then cancel the job.
     */
    static Map<String, Object> restore(MiniCluster cluster, JobGraph graph, String path,
            long timeoutMs) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("path", path);
        graph.setSavepointRestoreSettings(SavepointRestoreSettings.forPath(path, false));
        long submitted = System.nanoTime();
        JobID id = cluster.submitJob(graph).get().getJobID();
        CompletableFuture<JobResult> done = cluster.requestJobResult(id);
        AccessExecution running = null;
        long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        while (running == null && !done.isDone() && System.nanoTime() < deadline) {
            AccessExecutionGraph g = cluster.getExecutionGraph(id).get();
            for (AccessExecutionJobVertex v : g.getAllVertices().values()) {
                if (!v.getName().equals("replay-state-calls")) {
                    continue;
                }
                AccessExecution e = v.getTaskVertices()[0].getCurrentExecutionAttempt();
                if (e.getState() == ExecutionState.RUNNING) {
                    running = e;
                }
            }
            if (running == null) {
                Thread.sleep(10);
            }
        }
        out.put("submit_to_running_s", (System.nanoTime() - submitted) / 1e9);
        if (running == null) {
            if (done.isDone()) {
                String cause = done.get().getSerializedThrowable()
                        .map(st -> st.getFullStringifiedStackTrace())
                        .orElse("the restored job ended before its operator ran");
                throw new RuntimeException("the restored Flink job failed: " + cause);
            }
            cluster.cancelJob(id).get();
            throw new RuntimeException("the restored job's operator was not running after "
                    + timeoutMs + " ms");
        }
        out.put("initializing_ms", running.getStateTimestamp(ExecutionState.RUNNING)
                - running.getStateTimestamp(ExecutionState.INITIALIZING));
        out.put("deploying_ms", running.getStateTimestamp(ExecutionState.INITIALIZING)
                - running.getStateTimestamp(ExecutionState.DEPLOYING));
        cluster.cancelJob(id).get();
        done.get();
        return out;
    }

    /**
     * Workload facts (base.*) < the configuration under test (config.yaml) < harness (conf.*);
     * then the harness's unset.* keys are removed (periodic checkpointing: the job triggers its
     * own checkpoints by event time, and Flink refuses an interval below 10 ms as "off").
     */
    static Configuration configuration(Properties spec) {
        Map<String, String> base = new LinkedHashMap<>();
        Map<String, String> harness = new LinkedHashMap<>();
        for (String k : spec.stringPropertyNames()) {
            if (k.startsWith("base.")) {
                base.put(k.substring(5), spec.getProperty(k));
            } else if (k.startsWith("conf.")) {
                harness.put(k.substring(5), spec.getProperty(k));
            }
        }
        Configuration conf = Configuration.fromMap(base);
        String dir = spec.getProperty("config.dir");
        if (dir != null && !dir.isEmpty()) {
            // Flink's own loader: config.yaml (Flink 2.x standard YAML) in that directory.
            conf.addAll(GlobalConfiguration.loadConfiguration(dir));
        }
        conf.addAll(Configuration.fromMap(harness));
        for (String k : spec.stringPropertyNames()) {
            if (k.startsWith("unset.")) {
                conf.removeKey(k.substring(6));
            }
        }
        return conf;
    }

    static List<Object> checkpointStats(CheckpointStatsSnapshot snapshot) {
        List<Object> out = new ArrayList<>();
        if (snapshot == null) {
            return out;
        }
        List<AbstractCheckpointStats> all = new ArrayList<>(snapshot.getHistory().getCheckpoints());
        all.sort((a, b) -> Long.compare(a.getCheckpointId(), b.getCheckpointId()));
        for (AbstractCheckpointStats c : all) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("id", c.getCheckpointId());
            m.put("status", c.getStatus().toString());
            m.put("end_to_end_ms", c.getEndToEndDuration());
            m.put("state_size", c.getStateSize());
            m.put("checkpointed_size", c.getCheckpointedSize());
            long sync = 0;
            long async = 0;
            for (TaskStateStats t : c.getAllTaskStateStats()) {
                TaskStateStats.TaskStateStatsSummary s = t.getSummaryStats();
                if (s.getSyncCheckpointDurationStats().getCount() > 0) {
                    sync = Math.max(sync, s.getSyncCheckpointDurationStats().getMaximum());
                }
                if (s.getAsyncCheckpointDurationStats().getCount() > 0) {
                    async = Math.max(async, s.getAsyncCheckpointDurationStats().getMaximum());
                }
            }
            m.put("sync_ms", sync);
            m.put("async_ms", async);
            Long row = SNAPSHOT_ROWS.get(c.getCheckpointId());
            m.put("at_row", row == null ? -1L : row);
            out.add(m);
        }
        return out;
    }

    /** Enough JSON for the result file: maps, lists, strings, numbers, booleans. */
    static final class Json {
        static String write(Object o) {
            StringBuilder b = new StringBuilder();
            write(o, b);
            return b.toString();
        }

        private static void write(Object o, StringBuilder b) {
            if (o == null) {
                b.append("null");
            } else if (o instanceof Map) {
                b.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : ((Map<?, ?>) o).entrySet()) {
                    if (!first) {
                        b.append(',');
                    }
                    first = false;
                    string(String.valueOf(e.getKey()), b);
                    b.append(':');
                    write(e.getValue(), b);
                }
                b.append('}');
            } else if (o instanceof List) {
                b.append('[');
                boolean first = true;
                for (Object x : (List<?>) o) {
                    if (!first) {
                        b.append(',');
                    }
                    first = false;
                    write(x, b);
                }
                b.append(']');
            } else if (o instanceof Double || o instanceof Float) {
                double d = ((Number) o).doubleValue();
                b.append(Double.isFinite(d) ? String.format(Locale.ROOT, "%.9g", d) : "null");
            } else if (o instanceof Number || o instanceof Boolean) {
                b.append(o);
            } else {
                string(o.toString(), b);
            }
        }

        private static void string(String s, StringBuilder b) {
            b.append('"');
            for (int i = 0; i < s.length(); i++) {
                char ch = s.charAt(i);
                if (ch == '"' || ch == '\\') {
                    b.append('\\').append(ch);
                } else if (ch < 0x20) {
                    b.append(String.format(Locale.ROOT, "\\u%04x", (int) ch));
                } else {
                    b.append(ch);
                }
            }
            b.append('"');
        }
    }

    private ReplayJob() {}
}
