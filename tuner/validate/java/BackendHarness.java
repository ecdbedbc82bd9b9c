/*
 * tuner's flink-backend engine: Flink's own keyed state backend (EmbeddedRocksDBStateBackend),
 * driven directly in one JVM, without a job or a MiniCluster, as apache/flink-benchmarks' state
 * benchmarks drive it. Everything below the state API is Flink's: FRocksDB, the merge operator of
 * ListState, the TTL compaction filter, the memory controller (managed memory: one shared cache
 * with its high-priority pool and a write buffer manager), the key layout, and the timer queues
 * (heap or RocksDB, per state.backend.rocksdb.timer-service.factory).
 *
 * Compiled with ReplayJob (whose StateSpec, configuration layers, state functions and JSON writer
 * it reuses) by tuner.validate.flink against <pyflink>/lib/*, and run as
 *     java -cp '<pyflink>/lib/*:<classes>' BackendHarness <spec.properties>
 * The spec holds the state table and the Flink configuration layers in ReplayJob's format.
 *
 * Protocol (tuner.engine.flink_backend is the other side): commands on stdin, one reply line per
 * command on stdout, prefixed "@@ " and holding JSON ({"error": ...} on failure).
 *   A <n>\n + n records of 56 bytes (tuner.validate.stream.RECORD_DTYPE): apply state calls
 *   F\n            flush the backend's write batches and RocksDB's memtables, wait for the flush
 *   C <dir>\n      checkpoint (Flink's incremental or full snapshot strategy) into <dir>
 *   S\n            counters: call counts, RocksDB statistics, memory and storage properties
 *   L\n            sampled state-call latencies (ns) since the last L
 *   R [<n>]\n      restore a second backend from the last checkpoint, timed, and dispose it;
 *                  with n, as subtask 0 of n after a change of parallelism (Flink's rescaling
 *                  restore: the key groups outside the new range are clipped away)
 *   R 1/<n>\n      restore as the one subtask left after the parallelism shrank n-fold: from n
 *                  handles, the last checkpoint split by key group as n subtasks would have
 *                  written it (the split untimed, once per checkpoint), merged by Flink's
 *                  rescaling restore (copied through temporary instances, or ingested)
 *   M\n            the JVM's own committed memory (Native Memory Tracking) and the heap in use
 *                  after a full collection (once, at the end of a measurement)
 *   Q\n            close the backend and exit
 * Timers fire as in ReplayJob: before a row, the watermark advances to ts(row) - 1, so the
 * stream's FIRE_TIMER rows are what Flink's timer service fires by itself.
 */

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.File;
import java.io.InputStream;
import java.io.PrintStream;
import java.lang.reflect.Field;
import java.lang.reflect.Proxy;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Executors;
import java.util.concurrent.RunnableFuture;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

import org.apache.flink.api.common.ExecutionConfig;
import org.apache.flink.api.common.JobID;
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
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.common.typeutils.base.LongSerializer;
import org.apache.flink.api.common.typeutils.base.StringSerializer;
import org.apache.flink.api.common.typeutils.base.array.BytePrimitiveArraySerializer;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.fs.CloseableRegistry;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.apache.flink.runtime.checkpoint.CheckpointOptions;
import org.apache.flink.runtime.checkpoint.CheckpointType;
import org.apache.flink.runtime.execution.Environment;
import org.apache.flink.runtime.io.disk.iomanager.IOManagerAsync;
import org.apache.flink.runtime.jobgraph.JobVertexID;
import org.apache.flink.runtime.memory.MemoryManager;
import org.apache.flink.runtime.memory.SharedResources;
import org.apache.flink.runtime.metrics.groups.UnregisteredMetricGroups;
import org.apache.flink.runtime.state.AbstractKeyedStateBackend;
import org.apache.flink.runtime.state.CheckpointStateOutputStream;
import org.apache.flink.runtime.state.CheckpointStorageLocationReference;
import org.apache.flink.runtime.state.CheckpointedStateScope;
import org.apache.flink.runtime.state.IncrementalKeyedStateHandle;
import org.apache.flink.runtime.state.IncrementalRemoteKeyedStateHandle;
import org.apache.flink.runtime.state.KeyGroupRange;
import org.apache.flink.runtime.state.KeyedStateBackendParametersImpl;
import org.apache.flink.runtime.state.KeyedStateCheckpointOutputStream;
import org.apache.flink.runtime.state.KeyedStateHandle;
import org.apache.flink.runtime.state.LocalRecoveryConfig;
import org.apache.flink.runtime.state.PlaceholderStreamStateHandle;
import org.apache.flink.runtime.state.SnapshotResult;
import org.apache.flink.runtime.state.StreamStateHandle;
import org.apache.flink.runtime.state.TaskStateManager;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.runtime.state.filesystem.FsCheckpointStreamFactory;
import org.apache.flink.runtime.state.internal.InternalKvState;
import org.apache.flink.runtime.state.ttl.TtlTimeProvider;
import org.apache.flink.runtime.taskmanager.TaskManagerRuntimeInfo;
//flink2{
import org.apache.flink.state.rocksdb.EmbeddedRocksDBStateBackend;
import org.apache.flink.state.rocksdb.RocksDBOptionsFactory;
//}flink2
//flink1{
import org.apache.flink.contrib.streaming.state.EmbeddedRocksDBStateBackend;
import org.apache.flink.contrib.streaming.state.RocksDBOptionsFactory;
//}flink1
import org.apache.flink.streaming.api.operators.InternalTimeServiceManagerImpl;
import org.apache.flink.streaming.api.operators.InternalTimer;
import org.apache.flink.streaming.api.operators.InternalTimerService;
import org.apache.flink.streaming.api.operators.KeyContext;
import org.apache.flink.streaming.api.operators.Triggerable;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.streaming.runtime.tasks.ProcessingTimeService;
import org.apache.flink.streaming.runtime.tasks.StreamTaskCancellationContext;
import org.apache.flink.util.SimpleUserCodeClassLoader;
import org.apache.flink.util.clock.SystemClock;

public final class BackendHarness {

    /**
     * What Flink's keys cannot set, through Flink's own state.backend.rocksdb.options-factory
     * (applied after the configured options): reads past the page cache (O_DIRECT), so a
     * block-cache miss costs a read of the disk, as on a TaskManager whose container leaves no
     * page cache; and a scaled model's arena block, scaled with its write buffer as the replay
     * scales it (left to RocksDB, a model's memtables each take a whole 1 MiB block out of a
     * write buffer manager scaled down with the model, and flush almost empty). Set from the
     * spec before the backend is built; Flink instantiates the factory in this JVM.
     */
    public static final class HarnessOptions implements RocksDBOptionsFactory {
        static volatile boolean directReads;
        static volatile long arenaBlockSize; // 0: RocksDB's own

        @Override
        public org.rocksdb.DBOptions createDBOptions(
                org.rocksdb.DBOptions currentOptions, java.util.Collection<AutoCloseable> handlesToClose) {
            return directReads ? currentOptions.setUseDirectReads(true) : currentOptions;
        }

        @Override
        public org.rocksdb.ColumnFamilyOptions createColumnOptions(
                org.rocksdb.ColumnFamilyOptions currentOptions,
                java.util.Collection<AutoCloseable> handlesToClose) {
            return arenaBlockSize > 0 ? currentOptions.setArenaBlockSize(arenaBlockSize) : currentOptions;
        }
    }

    static final int GET = ReplayJob.GET, UPDATE = ReplayJob.UPDATE, ADD = ReplayJob.ADD,
            CLEAR = ReplayJob.CLEAR, PUT = ReplayJob.PUT, REMOVE = ReplayJob.REMOVE,
            CONTAINS = ReplayJob.CONTAINS, ITERATE = ReplayJob.ITERATE,
            REGISTER_TIMER = ReplayJob.REGISTER_TIMER, DELETE_TIMER = ReplayJob.DELETE_TIMER,
            FIRE_TIMER = ReplayJob.FIRE_TIMER, N_OPS = ReplayJob.N_OPS;

    private final ReplayJob.StateSpec[] specs;
    private final byte[] payload;
    private final int sampleEvery;
    private final boolean stringKeys;
    private final int keySize;
    private final AbstractKeyedStateBackend<Object> backend;
    private final InternalTimeServiceManagerImpl<Object> timers;
    private final KeyGroupRange range;
    private final MemoryManager memoryManager;
    private final IOManagerAsync ioManager;
    private final ScheduledExecutorService timerThread;
    private final Object[] states;
    private final InternalKvState<?, TimeWindow, ?>[] windowed;
    private InternalTimerService<TimeWindow> windowTimers;
    private InternalTimerService<VoidNamespace> userTimers;
    private final long[][] counts;
    private long ops;
    private long rowSeq;
    private long lastWatermark = Long.MIN_VALUE;
    private long firesEvent;
    private long checkpointId;
    // What a restore needs: the last checkpoint's handle and the backend's own ingredients.
    private KeyedStateHandle lastHandle;
    // Every SST file an incremental checkpoint uploaded, by its file name: a later checkpoint
    // refers to it by a placeholder, which Flink's checkpoint coordinator resolves before a
    // restore; the harness does the same.
    private final Map<String, StreamStateHandle> uploaded = new java.util.HashMap<>();
    private final EmbeddedRocksDBStateBackend stateBackend;
    private final Environment env;
    private final JobID jobId;
    private final TypeSerializer<Object> keySerializer;
    private final int maxParallelism;
    private final File workDir;
    // R 1/<n>: the last checkpoint split into n subtasks' handles, kept for the repeated restores
    // of one measurement (the checkpoint id and n they were split for).
    private List<KeyedStateHandle> splitHandles;
    private long splitCheckpoint = -1;
    private int splitWays;
    private int splitInRange;
    private final org.rocksdb.RocksDB db;
    private final org.rocksdb.Statistics statistics;
    private final List<org.rocksdb.ColumnFamilyHandle> handles = new ArrayList<>();
    private long[] readSamples = new long[1024];
    private int nRead;
    private long[] writeSamples = new long[1024];
    private int nWrite;

    @SuppressWarnings("unchecked")
    BackendHarness(Properties spec) throws Exception {
        int n = Integer.parseInt(ReplayJob.req(spec, "states.count"));
        specs = new ReplayJob.StateSpec[n];
        for (int i = 0; i < n; i++) {
            specs[i] = new ReplayJob.StateSpec(spec, i);
        }
        payload = Files.readAllBytes(Paths.get(ReplayJob.req(spec, "payload.file")));
        sampleEvery = Integer.parseInt(spec.getProperty("sample.every", "16"));
        maxParallelism = Integer.parseInt(ReplayJob.req(spec, "max_parallelism"));
        long managedBytes = Long.parseLong(ReplayJob.req(spec, "managed.bytes"));
        File work = new File(ReplayJob.req(spec, "work.dir"));
        workDir = work;
        stringKeys = specs[0].keyType.equals("string");
        keySize = specs[0].keySize;

        HarnessOptions.directReads = Boolean.parseBoolean(spec.getProperty("direct.reads", "false"));
        HarnessOptions.arenaBlockSize = Long.parseLong(spec.getProperty("arena.block.size", "0"));
        Configuration conf = ReplayJob.configuration(spec);
        ClassLoader cl = BackendHarness.class.getClassLoader();
        // The same entry point a task uses (StreamTaskStateInitializerImpl): the backend reads
        // every state.backend.rocksdb.* key, the predefined options, the timer-service factory
        // and incremental checkpointing from the configuration itself.
        stateBackend = new EmbeddedRocksDBStateBackend().configure(conf, cl);
        // A slot's managed memory, of which this operator is the only consumer (fraction 1.0).
        memoryManager = MemoryManager.create(managedBytes, MemoryManager.DEFAULT_PAGE_SIZE);
        ioManager = new IOManagerAsync(new File(work, "io").getAbsolutePath());
        jobId = new JobID();
        env = environment(conf, work, jobId, memoryManager, ioManager, cl);
        range = new KeyGroupRange(0, maxParallelism - 1);
        keySerializer = (TypeSerializer<Object>) (TypeSerializer<?>)
                (stringKeys ? StringSerializer.INSTANCE : LongSerializer.INSTANCE);
        backend = createBackend(Collections.emptyList());

        timerThread = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "processing-time");
            t.setDaemon(true);
            return t;
        });
        KeyContext keys = new KeyContext() {
            @Override
            public void setCurrentKey(Object key) {
                backend.setCurrentKey(key);
            }

            @Override
            public Object getCurrentKey() {
                return backend.getCurrentKey();
            }
        };
        // The backend is the timer queues' factory, as in StreamTaskStateInitializerImpl: heap
        // queues or RocksDB column families per state.backend.rocksdb.timer-service.factory.
        //flink2{
        timers = InternalTimeServiceManagerImpl.create(
                UnregisteredMetricGroups.createUnregisteredTaskMetricGroup().getIOMetricGroup(),
                backend, range, cl, keys, processingTime(), Collections.emptyList(),
                StreamTaskCancellationContext.alwaysRunning());
        //}flink2
        //flink1{
        timers = InternalTimeServiceManagerImpl.create(
                UnregisteredMetricGroups.createUnregisteredTaskMetricGroup().getIOMetricGroup(),
                backend, cl, keys, processingTime(), Collections.emptyList(),
                StreamTaskCancellationContext.alwaysRunning());
        //}flink1

        states = new Object[n];
        windowed = new InternalKvState[n];
        counts = new long[n][N_OPS];
        for (int i = 0; i < n; i++) {
            ReplayJob.StateSpec s = specs[i];
            if (s.kind.equals("timers")) {
                // Names as WindowOperator ("window-timers") and KeyedProcessOperator
                // ("user-timers") give them (InternalTimeServiceManagerImpl prefixes them).
                if (s.name.endsWith("window-timers")) {
                    if (windowTimers == null) {
                        windowTimers = timers.getInternalTimerService("window-timers",
                                keySerializer, new TimeWindow.Serializer(), new Fires<>());
                    }
                } else if (userTimers == null) {
                    userTimers = timers.getInternalTimerService("user-timers", keySerializer,
                            VoidNamespaceSerializer.INSTANCE, new Fires<>());
                }
                continue;
            }
            StateDescriptor<?, ?> d = descriptor(s);
            if (s.ttl) {
                // As ReplayJob: expiry follows the stream's explicit CLEARs; the values carry
                // Flink's TTL timestamp and the column family Flink's compaction filter.
                d.enableTimeToLive(StateTtlConfig.newBuilder(Duration.ofDays(3650)).build());
            }
            Object state;
            if (s.windowed) {
                state = backend.getOrCreateKeyedState(new TimeWindow.Serializer(),
                        (StateDescriptor<State, Object>) d);
                windowed[i] = (InternalKvState<?, TimeWindow, ?>) state;
            } else {
                state = backend.getOrCreateKeyedState(VoidNamespaceSerializer.INSTANCE,
                        (StateDescriptor<State, Object>) d);
                ((InternalKvState<?, VoidNamespace, ?>) state)
                        .setCurrentNamespace(VoidNamespace.INSTANCE);
            }
            states[i] = state;
        }

        Class<?> c = rocksBackendClass(backend);
        db = rocksDb(backend);
        Object monitor = field(c, "nativeMetricMonitor").get(backend);
        statistics = monitor == null ? null
                : (org.rocksdb.Statistics) field(monitor.getClass(), "statistics").get(monitor);
        handles.add(db.getDefaultColumnFamily());
    }

    private static Class<?> rocksBackendClass(Object backend) {
        Class<?> c = backend.getClass();
        while (c != null && !c.getName().endsWith(".RocksDBKeyedStateBackend")) {
            c = c.getSuperclass();
        }
        if (c == null) {
            throw new IllegalStateException("the keyed state backend is "
                    + backend.getClass().getName() + ", not RocksDB");
        }
        return c;
    }

    /** The RocksDB instance of a RocksDB keyed backend. */
    private static org.rocksdb.RocksDB rocksDb(Object keyed) throws Exception {
        return (org.rocksdb.RocksDB) field(rocksBackendClass(keyed), "db").get(keyed);
    }

    private static Field field(Class<?> c, String name) throws NoSuchFieldException {
        Field f = c.getDeclaredField(name);
        f.setAccessible(true);
        return f;
    }

    /** What the backend asks of its task: memory, I/O, config, class loader; nothing else. */
    private static Environment environment(Configuration conf, File work, JobID jobId,
            MemoryManager memory, IOManagerAsync io, ClassLoader cl) {
        ExecutionConfig executionConfig = new ExecutionConfig();
        SharedResources shared = new SharedResources();
        JobVertexID vertex = new JobVertexID();
        TaskManagerRuntimeInfo tmInfo = (TaskManagerRuntimeInfo) Proxy.newProxyInstance(cl,
                new Class<?>[] {TaskManagerRuntimeInfo.class}, (p, m, a) -> {
                    switch (m.getName()) {
                        case "getConfiguration": return conf;
                        case "getTmpDirectories": return new String[] {work.getAbsolutePath()};
                        case "getTmpWorkingDirectory": return work;
                        case "shouldExitJvmOnOutOfMemoryError": return false;
                        case "getTaskManagerExternalAddress":
                        case "getTaskManagerBindAddress": return "localhost";
                        default: throw new UnsupportedOperationException(
                                "TaskManagerRuntimeInfo." + m.getName());
                    }
                });
        TaskStateManager taskState = (TaskStateManager) Proxy.newProxyInstance(cl,
                new Class<?>[] {TaskStateManager.class}, (p, m, a) -> {
                    if (m.getName().equals("createLocalRecoveryConfig")) {
                        return LocalRecoveryConfig.BACKUP_AND_RECOVERY_DISABLED;
                    }
                    throw new UnsupportedOperationException("TaskStateManager." + m.getName());
                });
        return (Environment) Proxy.newProxyInstance(cl, new Class<?>[] {Environment.class},
                (p, m, a) -> {
                    switch (m.getName()) {
                        case "getTaskManagerInfo": return tmInfo;
                        case "getJobID": return jobId;
                        case "getJobVertexId": return vertex;
                        case "getTaskStateManager": return taskState;
                        case "getExecutionConfig": return executionConfig;
                        case "getUserCodeClassLoader": return SimpleUserCodeClassLoader.create(cl);
                        case "getIOManager": return io;
                        case "getMemoryManager": return memory;
                        case "getSharedResources": return shared;
                        case "getJobConfiguration":
                        case "getTaskConfiguration": return conf;
                        case "toString": return "BackendHarness environment";
                        case "hashCode": return System.identityHashCode(p);
                        case "equals": return p == a[0];
                        default: throw new UnsupportedOperationException(
                                "Environment." + m.getName());
                    }
                });
    }

    /** Processing time that never fires: processing-time timers are registered far ahead (as
     * ReplayJob does) and the stream's FIRE_TIMER rows delete them. */
    private ProcessingTimeService processingTime() {
        ClassLoader cl = BackendHarness.class.getClassLoader();
        return (ProcessingTimeService) Proxy.newProxyInstance(cl,
                new Class<?>[] {ProcessingTimeService.class}, (p, m, a) -> {
                    switch (m.getName()) {
                        case "getCurrentProcessingTime": return 0L;
                        case "getClock": return SystemClock.getInstance();
                        case "registerTimer":
                        case "scheduleAtFixedRate":
                        case "scheduleWithFixedDelay": {
                            ScheduledFuture<?> f = timerThread.schedule(() -> { }, 3650,
                                    TimeUnit.DAYS);
                            return f;
                        }
                        case "quiesce": return java.util.concurrent.CompletableFuture
                                .completedFuture(null);
                        case "hashCode": return System.identityHashCode(p);
                        case "equals": return p == a[0];
                        case "toString": return "never-firing processing time";
                        default: throw new UnsupportedOperationException(
                                "ProcessingTimeService." + m.getName());
                    }
                });
    }

    private final class Fires<N> implements Triggerable<Object, N> {
        @Override
        public void onEventTime(InternalTimer<Object, N> timer) {
            // The stream carries what a fire does to state as its own rows.
            firesEvent++;
        }

        @Override
        public void onProcessingTime(InternalTimer<Object, N> timer) {
        }
    }

    private static StateDescriptor<?, ?> descriptor(ReplayJob.StateSpec s) {
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
                return new ReducingStateDescriptor<>(s.name, new ReplayJob.KeepLatest(), bytes);
            case "aggregating":
                return new AggregatingStateDescriptor<>(s.name, new ReplayJob.LatestAggregate(),
                        bytes);
            default:
                throw new IllegalArgumentException("state " + s.name + ": unknown kind "
                        + s.kind);
        }
    }

    // ---------------------------------------------------------------------------------------
    // State calls (ReplayJob.ReplayOperator.execute, on the backend instead of an operator)

    private Object key(long id) {
        if (!stringKeys) {
            return id;
        }
        return new ReplayJob.StringKey(keySize).getKey(new long[] {0, 0, 0, id});
    }

    private static boolean isRead(int op) {
        return op == GET || op == CONTAINS || op == ITERATE;
    }

    void apply(ByteBuffer buf, int rows) throws Exception {
        for (int i = 0; i < rows; i++) {
            int o = i * ReplayJob.RECORD_BYTES;
            long ts = buf.getLong(o);
            long k = buf.getLong(o + 8);
            long nsStart = buf.getLong(o + 16);
            long nsEnd = buf.getLong(o + 24);
            long uk = buf.getLong(o + 32);
            long timerTs = buf.getLong(o + 40);
            int valueSize = buf.getInt(o + 48);
            int si = buf.getShort(o + 52);
            int op = buf.get(o + 54);
            if (si < 0 || si >= specs.length || op < 0 || op >= N_OPS) {
                throw new IllegalArgumentException("row with state " + si + ", op " + op);
            }
            // The watermark a record with this event time follows (ReplayJob.NextRowWatermarks).
            if (ts - 1 > lastWatermark) {
                lastWatermark = ts - 1;
                timers.advanceWatermark(new Watermark(lastWatermark));
            }
            backend.setCurrentKey(key(k));
            boolean sample = sampleEvery > 0 && ops % sampleEvery == 0;
            long t0 = sample ? System.nanoTime() : 0;
            execute(si, op, nsStart, nsEnd, uk, timerTs, valueSize, rowSeq++);
            if (sample) {
                long dt = System.nanoTime() - t0;
                if (isRead(op)) {
                    if (nRead == readSamples.length) {
                        readSamples = java.util.Arrays.copyOf(readSamples, nRead * 2);
                    }
                    readSamples[nRead++] = dt;
                } else {
                    if (nWrite == writeSamples.length) {
                        writeSamples = java.util.Arrays.copyOf(writeSamples, nWrite * 2);
                    }
                    writeSamples[nWrite++] = dt;
                }
            }
            ops++;
            counts[si][op]++;
        }
    }

    private void execute(int si, int op, long nsStart, long nsEnd, long uk, long timerTs,
            int valueSize, long row) throws Exception {
        ReplayJob.StateSpec s = specs[si];
        if (s.kind.equals("timers")) {
            StateCalls.timer(s, op, nsStart, nsEnd, timerTs, windowTimers, userTimers);
            return;
        }
        if (s.windowed) {
            windowed[si].setCurrentNamespace(new TimeWindow(nsStart, nsEnd));
        }
        StateCalls.call(s, states[si], op, payload, row, valueSize, uk);
    }

    // ---------------------------------------------------------------------------------------
    // Flush, checkpoint, counters

    private List<org.rocksdb.ColumnFamilyHandle> allHandles() throws Exception {
        return columnFamilies(backend);
    }

    /** Every column family of a RocksDB keyed backend: its states' and the default one. */
    private static List<org.rocksdb.ColumnFamilyHandle> columnFamilies(Object keyed)
            throws Exception {
        List<org.rocksdb.ColumnFamilyHandle> out = new ArrayList<>();
        Class<?> c = rocksBackendClass(keyed);
        Map<?, ?> infos = (Map<?, ?>) field(c, "kvStateInformation").get(keyed);
        for (Object info : infos.values()) {
            out.add((org.rocksdb.ColumnFamilyHandle) field(info.getClass(),
                    "columnFamilyHandle").get(info));
        }
        out.add(rocksDb(keyed).getDefaultColumnFamily());
        return out;
    }

    private AbstractKeyedStateBackend<Object> createBackend(
            java.util.Collection<KeyedStateHandle> restoreFrom) throws Exception {
        return createBackend(restoreFrom, range);
    }

    @SuppressWarnings("unchecked")
    private AbstractKeyedStateBackend<Object> createBackend(
            java.util.Collection<KeyedStateHandle> restoreFrom, KeyGroupRange keyGroups)
            throws Exception {
        KeyedStateBackendParametersImpl<Object> params = new KeyedStateBackendParametersImpl<>(
                env, jobId, "replay-state-calls", keySerializer, maxParallelism, keyGroups,
                null, TtlTimeProvider.DEFAULT, new UnregisteredMetricsGroup(),
                (name, value) -> { }, restoreFrom, new CloseableRegistry(), 1.0);
        return (AbstractKeyedStateBackend<Object>) stateBackend.createKeyedStateBackend(params);
    }

    /**
     * Recovery: a second backend restored from the last checkpoint (Flink's restore of an
     * incremental or full snapshot without rescaling: files copied from the checkpoint storage
     * into a new instance directory, RocksDB opened on the slot's shared memory), timed, then
     * disposed. Heap timers are the operator's raw keyed state and are not part of it.
     */
    Map<String, Object> restore(int rescaleTo) throws Exception {
        KeyedStateHandle handle = restorableLastHandle();
        // After a change of parallelism to n, subtask 0 of n owns the first key groups of this
        // one's (KeyGroupRangeAssignment.computeKeyGroupRangeForOperatorIndex); Flink then
        // restores through its rescaling path, with its options (delete-files-in-range, ingest).
        KeyGroupRange target = rescaleTo > 1
                ? org.apache.flink.runtime.state.KeyGroupRangeAssignment
                        .computeKeyGroupRangeForOperatorIndex(maxParallelism, rescaleTo, 0)
                : range;
        return timedRestore(Collections.singletonList(handle), target);
    }

    /**
     * Recovery after a scale-in by n: the one subtask left owns the key groups of n old ones and
     * restores from their n handles. The old subtasks' handles are the last checkpoint split by
     * key group (each part restored clipped to an old subtask's range, compacted so that its
     * files hold its own key groups only, as a subtask's do once it has run for a while, and
     * checkpointed); that split is preparation and untimed. Timed: Flink's rescaling restore of
     * the n handles into the whole range (the best handle opened as the base, the others copied
     * into it through temporary instances, or with use-ingest-db-restore-mode exported and
     * imported).
     */
    Map<String, Object> restoreScaledIn(int from) throws Exception {
        KeyedStateHandle whole = restorableLastHandle();
        if (splitHandles == null || splitCheckpoint != checkpointId || splitWays != from) {
            File dir = new File(workDir, "scale-in-" + checkpointId + "-" + from);
            List<KeyedStateHandle> parts = new ArrayList<>();
            int inRange = 0;
            for (int i = 0; i < from; i++) {
                KeyGroupRange part = org.apache.flink.runtime.state.KeyGroupRangeAssignment
                        .computeKeyGroupRangeForOperatorIndex(maxParallelism, from, i);
                AbstractKeyedStateBackend<Object> old =
                        createBackend(Collections.singletonList(whole), part);
                try {
                    org.rocksdb.RocksDB oldDb = rocksDb(old);
                    // Forced down to the bottom level: by default RocksDB leaves the bottom
                    // level's files (and the other key groups in them) alone unless a
                    // compaction filter is set, and Flink would then copy, not ingest, them.
                    try (org.rocksdb.CompactRangeOptions bottom =
                            new org.rocksdb.CompactRangeOptions().setBottommostLevelCompaction(
                                    org.rocksdb.CompactRangeOptions.BottommostLevelCompaction
                                            .kForce)) {
                        for (org.rocksdb.ColumnFamilyHandle cf : columnFamilies(old)) {
                            oldDb.compactRange(cf, null, null, bottom);
                        }
                    }
                    if (allInRange(oldDb, part)) {
                        inRange++;
                    }
                    KeyedStateHandle h = snapshotOf(old, checkpointId,
                            new File(dir, "subtask-" + i)).getJobManagerOwnedSnapshot();
                    if (h != null) {
                        parts.add(h);
                    }
                } finally {
                    old.dispose();
                }
            }
            splitHandles = parts;
            splitCheckpoint = checkpointId;
            splitWays = from;
            splitInRange = inRange;
        }
        Map<String, Object> out = timedRestore(new ArrayList<>(splitHandles), range);
        out.put("restore_handles", splitHandles.size());
        out.put("restore_handles_in_range", splitInRange);
        return out;
    }

    /**
     * Whether every SST file of {@code oldDb} lies inside {@code part}'s key groups: Flink's own
     * check (RocksDBIncrementalCheckpointUtils.checkSstDataAgainstKeyGroupRange) of whether
     * use-ingest-db-restore-mode can import the handle rather than copy it.
     */
    private boolean allInRange(org.rocksdb.RocksDB oldDb, KeyGroupRange part) throws Exception {
        int prefix = org.apache.flink.runtime.state.CompositeKeySerializationUtils
                .computeRequiredBytesInKeyGroupPrefix(maxParallelism);
        Class<?> utils;
        try {
            utils = Class.forName(
                    "org.apache.flink.state.rocksdb.RocksDBIncrementalCheckpointUtils");
        } catch (ClassNotFoundException e) {
            // Flink 1.20: the same check under its older name, answering a boolean.
            utils = Class.forName(
                    "org.apache.flink.contrib.streaming.state.RocksDBIncrementalCheckpointUtils");
            return (Boolean) utils.getMethod("isSstDataInKeyGroupRange",
                    org.rocksdb.RocksDB.class, int.class, KeyGroupRange.class)
                    .invoke(null, oldDb, prefix, part);
        }
        Object result = utils.getMethod("checkSstDataAgainstKeyGroupRange",
                org.rocksdb.RocksDB.class, int.class, KeyGroupRange.class)
                .invoke(null, oldDb, prefix, part);
        return (Boolean) result.getClass().getMethod("allInRange").invoke(result);
    }

    private Map<String, Object> timedRestore(List<KeyedStateHandle> handles, KeyGroupRange target)
            throws Exception {
        long t0 = System.nanoTime();
        AbstractKeyedStateBackend<Object> restored = createBackend(handles, target);
        long ns = System.nanoTime() - t0;
        long entries = 0;
        try {
            org.rocksdb.RocksDB restoredDb = rocksDb(restored);
            for (org.rocksdb.ColumnFamilyHandle cf : columnFamilies(restored)) {
                entries += restoredDb.getLongProperty(cf, "rocksdb.estimate-num-keys");
            }
        } finally {
            restored.dispose();
        }
        long bytes = 0;
        for (KeyedStateHandle h : handles) {
            bytes += h.getStateSize();
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("restore_s", ns / 1e9);
        out.put("restore_bytes", bytes);
        out.put("restore_entries_estimate", entries);
        return out;
    }

    /**
     * The last checkpoint's handle as Flink's checkpoint coordinator hands it to a restore: the
     * placeholders for SST files an earlier checkpoint uploaded resolved to those uploads.
     */
    private KeyedStateHandle restorableLastHandle() {
        if (lastHandle == null) {
            throw new IllegalStateException("no checkpoint to restore from");
        }
        KeyedStateHandle handle = lastHandle;
        if (handle instanceof IncrementalRemoteKeyedStateHandle) {
            IncrementalRemoteKeyedStateHandle inc = (IncrementalRemoteKeyedStateHandle) handle;
            List<IncrementalKeyedStateHandle.HandleAndLocalPath> shared = new ArrayList<>();
            for (IncrementalKeyedStateHandle.HandleAndLocalPath p : inc.getSharedState()) {
                StreamStateHandle real = p.getHandle() instanceof PlaceholderStreamStateHandle
                        ? uploaded.get(p.getLocalPath()) : p.getHandle();
                if (real == null) {
                    throw new IllegalStateException("no upload of " + p.getLocalPath());
                }
                shared.add(IncrementalKeyedStateHandle.HandleAndLocalPath.of(
                        real, p.getLocalPath()));
            }
            handle = new IncrementalRemoteKeyedStateHandle(inc.getBackendIdentifier(),
                    inc.getKeyGroupRange(), inc.getCheckpointId(), shared,
                    inc.getPrivateState(), inc.getMetaDataStateHandle());
        }
        return handle;
    }

    void flush() throws Exception {
        try (org.rocksdb.FlushOptions fo = new org.rocksdb.FlushOptions().setWaitForFlush(true)) {
            db.flush(fo, allHandles());
        }
    }

    private static final CheckpointOptions CHECKPOINT = CheckpointOptions.alignedNoTimeout(
            CheckpointType.CHECKPOINT, CheckpointStorageLocationReference.getDefault());

    /** Checkpoint streams into {@code exclusive}, with the shared (SST) files beside it. */
    private static FsCheckpointStreamFactory checkpointStreams(File exclusive)
            throws java.io.IOException {
        File shared = new File(exclusive.getParentFile(), "shared");
        if (!exclusive.mkdirs() && !exclusive.isDirectory()) {
            throw new java.io.IOException("cannot create " + exclusive);
        }
        shared.mkdirs();
        return new FsCheckpointStreamFactory(FileSystem.getLocalFileSystem(),
                new org.apache.flink.core.fs.Path(exclusive.toURI()),
                new org.apache.flink.core.fs.Path(shared.toURI()), 20 * 1024, 4096);
    }

    private static SnapshotResult<KeyedStateHandle> completed(
            RunnableFuture<SnapshotResult<KeyedStateHandle>> f) throws Exception {
        if (!f.isDone()) {
            f.run();
        }
        return f.get();
    }

    /** A snapshot of another backend (a scale-in's old subtask) into {@code exclusive}. */
    private static SnapshotResult<KeyedStateHandle> snapshotOf(
            AbstractKeyedStateBackend<Object> keyed, long id, File exclusive) throws Exception {
        return completed(keyed.snapshot(id, System.currentTimeMillis(),
                checkpointStreams(exclusive), CHECKPOINT));
    }

    Map<String, Object> checkpoint(String dir) throws Exception {
        long id = ++checkpointId;
        FsCheckpointStreamFactory streams = checkpointStreams(new File(dir));
        long t0 = System.nanoTime();
        // Heap timers beside RocksDB state: the operator writes them synchronously into raw
        // keyed state (StreamOperatorStateHandler.snapshotState), as Flink does.
        long rawTimerBytes = 0;
        if (backend.requiresLegacySynchronousTimerSnapshots(CheckpointType.CHECKPOINT)) {
            CheckpointStateOutputStream raw =
                    streams.createCheckpointStateOutputStream(CheckpointedStateScope.EXCLUSIVE);
            timers.snapshotToRawKeyedState(new KeyedStateCheckpointOutputStream(raw, range),
                    "replay-state-calls");
            StreamStateHandle written = raw.closeAndGetHandle();
            rawTimerBytes = written == null ? 0 : written.getStateSize();
        }
        RunnableFuture<SnapshotResult<KeyedStateHandle>> f = backend.snapshot(id,
                System.currentTimeMillis(), streams, CHECKPOINT);
        long syncNs = System.nanoTime() - t0;
        SnapshotResult<KeyedStateHandle> result = completed(f);
        long totalNs = System.nanoTime() - t0;
        backend.notifyCheckpointComplete(id);
        KeyedStateHandle h = result.getJobManagerOwnedSnapshot();
        lastHandle = h;
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("checkpointed_size", (h == null ? 0L : h.getCheckpointedSize()) + rawTimerBytes);
        out.put("raw_timer_bytes", rawTimerBytes);
        out.put("state_size", h == null ? 0L : h.getStateSize());
        // SST files: new ones are uploaded, the rest are placeholders for files an earlier
        // checkpoint uploaded (RocksIncrementalSnapshotStrategy); a full snapshot has none.
        long newSst = 0;
        long allSst = 0;
        if (h instanceof IncrementalRemoteKeyedStateHandle) {
            for (IncrementalKeyedStateHandle.HandleAndLocalPath p
                    : ((IncrementalRemoteKeyedStateHandle) h).getSharedState()) {
                if (!(p.getHandle() instanceof PlaceholderStreamStateHandle)) {
                    uploaded.put(p.getLocalPath(), p.getHandle());
                }
                allSst += p.getStateSize();
                if (!(p.getHandle() instanceof PlaceholderStreamStateHandle)) {
                    newSst += p.getStateSize();
                }
            }
        } else if (h != null) {
            newSst = h.getStateSize();
            allSst = newSst;
        }
        out.put("new_sst_bytes", newSst);
        out.put("total_sst_bytes", allSst);
        out.put("sync_s", syncNs / 1e9);
        out.put("total_s", totalNs / 1e9);
        return out;
    }

    private long sum(String property) throws Exception {
        long v = 0;
        for (org.rocksdb.ColumnFamilyHandle h : allHandles()) {
            v += db.getLongProperty(h, property);
        }
        return v;
    }

    Map<String, Object> stats() throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        List<Object> perState = new ArrayList<>();
        for (int i = 0; i < specs.length; i++) {
            List<Object> c = new ArrayList<>();
            for (long n : counts[i]) {
                c.add(n);
            }
            perState.add(c);
        }
        out.put("ops", ops);
        out.put("counts", perState);
        out.put("timer_fires", firesEvent);
        out.put("statistics", statistics == null ? "" : statistics.toString());
        Map<String, Object> props = new LinkedHashMap<>();
        // One cache shared by every column family under managed memory: read it once.
        props.put("block_cache_usage", db.getLongProperty("rocksdb.block-cache-usage"));
        props.put("block_cache_pinned_usage",
                db.getLongProperty("rocksdb.block-cache-pinned-usage"));
        props.put("memtables_bytes", sum("rocksdb.cur-size-all-mem-tables"));
        props.put("table_readers_bytes", sum("rocksdb.estimate-table-readers-mem"));
        props.put("total_sst_bytes", sum("rocksdb.total-sst-files-size"));
        props.put("live_data_bytes", sum("rocksdb.estimate-live-data-size"));
        props.put("compaction_pending", sum("rocksdb.compaction-pending"));
        props.put("running_compactions", db.getLongProperty("rocksdb.num-running-compactions"));
        props.put("running_flushes", db.getLongProperty("rocksdb.num-running-flushes"));
        out.put("properties", props);
        return out;
    }

    Map<String, Object> latencies() {
        Map<String, Object> out = new LinkedHashMap<>();
        List<Object> r = new ArrayList<>(nRead);
        for (int i = 0; i < nRead; i++) {
            r.add(readSamples[i]);
        }
        List<Object> w = new ArrayList<>(nWrite);
        for (int i = 0; i < nWrite; i++) {
            w.add(writeSamples[i]);
        }
        nRead = 0;
        nWrite = 0;
        out.put("read_ns", r);
        out.put("write_ns", w);
        return out;
    }

    void close() throws Exception {
        try {
            backend.dispose();
        } finally {
            timerThread.shutdownNow();
            ioManager.close();
            memoryManager.shutdown();
        }
    }

    // ---------------------------------------------------------------------------------------
    // main: the command loop

    private static String line(InputStream in) throws java.io.IOException {
        StringBuilder b = new StringBuilder();
        int c;
        while ((c = in.read()) != -1 && c != '\n') {
            b.append((char) c);
        }
        return c == -1 && b.length() == 0 ? null : b.toString();
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: BackendHarness <spec.properties>");
            System.exit(2);
        }
        // Replies go to the real stdout; anything else that prints goes to stderr.
        PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out),
                false, StandardCharsets.UTF_8);
        System.setOut(System.err);
        Properties spec = new Properties();
        try (InputStream in = Files.newInputStream(Paths.get(args[0]))) {
            spec.load(in);
        }
        BackendHarness h;
        try {
            h = new BackendHarness(spec);
        } catch (Throwable t) {
            reply(out, error(t));
            throw t;
        }
        Map<String, Object> ready = new LinkedHashMap<>();
        ready.put("ready", true);
        ready.put("flink_version",
                org.apache.flink.runtime.util.EnvironmentInformation.getVersion());
        reply(out, ready);
        DataInputStream in = new DataInputStream(new BufferedInputStream(System.in, 1 << 20));
        byte[] buf = new byte[0];
        String cmd;
        while ((cmd = line(in)) != null) {
            Map<String, Object> res = new LinkedHashMap<>();
            try {
                if (cmd.startsWith("A ")) {
                    int rows = Integer.parseInt(cmd.substring(2).trim());
                    int bytes = rows * ReplayJob.RECORD_BYTES;
                    if (buf.length < bytes) {
                        buf = new byte[bytes];
                    }
                    in.readFully(buf, 0, bytes);
                    h.apply(ByteBuffer.wrap(buf, 0, bytes).order(ByteOrder.LITTLE_ENDIAN), rows);
                    res.put("ops", h.ops);
                } else if (cmd.equals("F")) {
                    h.flush();
                } else if (cmd.startsWith("C ")) {
                    res = h.checkpoint(cmd.substring(2));
                } else if (cmd.equals("S")) {
                    res = h.stats();
                } else if (cmd.equals("L")) {
                    res = h.latencies();
                } else if (cmd.equals("R")) {
                    res = h.restore(1);
                } else if (cmd.startsWith("R 1/")) {
                    res = h.restoreScaledIn(Integer.parseInt(cmd.substring(4).trim()));
                } else if (cmd.startsWith("R ")) {
                    res = h.restore(Integer.parseInt(cmd.substring(2).trim()));
                } else if (cmd.equals("M")) {
                    res = jvmMemory();
                } else if (cmd.equals("Q")) {
                    h.close();
                    reply(out, res);
                    break;
                } else {
                    throw new IllegalArgumentException("unknown command " + cmd);
                }
            } catch (Throwable t) {
                res = error(t);
            }
            reply(out, res);
        }
        out.flush();
        System.exit(0);
    }

    /**
     * What the JVM itself has committed (heap, metaspace, code, threads, GC: Native Memory
     * Tracking's total, -XX:NativeMemoryTracking=summary), so that the process's RSS less it is
     * the native memory outside the JVM's account: FRocksDB's and its allocator's. -1 when NMT
     * is off.
     */
    static Map<String, Object> jvmMemory() throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        long committed = -1;
        try {
            Object text = java.lang.management.ManagementFactory.getPlatformMBeanServer().invoke(
                    new javax.management.ObjectName("com.sun.management:type=DiagnosticCommand"),
                    "vmNativeMemory", new Object[] {new String[] {"summary"}},
                    new String[] {String[].class.getName()});
            java.util.regex.Matcher m = java.util.regex.Pattern
                    .compile("Total: reserved=(\\d+)KB, committed=(\\d+)KB")
                    .matcher(String.valueOf(text));
            if (m.find()) {
                committed = Long.parseLong(m.group(2)) * 1024;
            }
        } catch (javax.management.JMException e) {
            committed = -1;
        }
        out.put("jvm_committed_bytes", committed);
        // After a full collection: what the heap holds live (heap timers among it), once, at
        // the end of a measurement.
        System.gc();
        out.put("heap_used_bytes",
                Runtime.getRuntime().totalMemory() - Runtime.getRuntime().freeMemory());
        return out;
    }

    private static Map<String, Object> error(Throwable t) {
        Map<String, Object> e = new LinkedHashMap<>();
        Throwable root = t;
        StringBuilder msg = new StringBuilder(String.valueOf(t));
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
            msg.append(" / ").append(root);
        }
        e.put("error", msg.toString());
        return e;
    }

    private static void reply(PrintStream out, Map<String, Object> m) {
        out.print("@@ ");
        out.print(ReplayJob.Json.write(m));
        out.print('\n');
        out.flush();
    }
}
