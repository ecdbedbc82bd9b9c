/*
 * tuner's recorder: a Flink state backend that wraps the configured one (RocksDB by default) and
 * records every keyed-state call of the job, so tuner can replay the job's own access pattern.
 *
 * Switched on by configuration alone (no change to the job):
 *     state.backend.type: TunerRecorderFactory      (this class, its jar in Flink's lib/)
 *     tuner.recorder.dir: /where/to/write            (one file per operator subtask and attempt)
 *     tuner.recorder.delegate: rocksdb               (the backend that really holds the state)
 *     tuner.recorder.secret: <32 hex digits>         (key of the keyed hash; same on every TM)
 *     tuner.recorder.sample: 1.0                     (share of keys recorded, per key)
 *     tuner.recorder.max-events / max-bytes          (per file; recording stops, the job not)
 *
 * How (facts from Flink's sources, cited where used):
 *  - StateBackendLoader.java accepts a StateBackendFactory class name in state.backend.type; the
 *    delegate is loaded by the same loader from a copy of the configuration.
 *  - AbstractKeyedStateBackend.java has a protected copy constructor that shares the delegate's
 *    key context, state cache and key-selection listeners; its getOrCreateKeyedState calls
 *    createOrUpdateInternalState on *this* backend (through TtlStateFactory.java), so TTL and
 *    latency tracking stay on top of the wrappers below and written sizes include TTL's 8 bytes.
 *  - InternalTimeServiceManagerImpl.java creates one priority queue per timer service through
 *    PriorityQueueSetFactory.create (add = register, remove = delete, poll = fire).
 *
 * Compiled by tuner.recorder against <pyflink>/lib/*. Lines between "//flink2{" and "//}flink2"
 * exist only on Flink 2.x (KeyedStateBackend.java gained setCurrentKeyAndKeyGroup and
 * getBackendTypeIdentifier in 2.0) and are dropped when compiling against 1.20.
 *
 * File format: see tuner/recorder/format.py (magic "TUNERREC", version, JSON header + CRC, blocks of
 * fixed 48-byte little-endian events with a CRC32 each, a JSON footer block last).
 */

import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.RunnableFuture;
import java.util.stream.Stream;
import java.util.zip.CRC32;

import org.apache.flink.api.common.state.State;
import org.apache.flink.api.common.state.StateDescriptor;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.common.typeutils.base.ListSerializer;
import org.apache.flink.api.common.typeutils.base.MapSerializer;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.IllegalConfigurationException;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.apache.flink.runtime.checkpoint.CheckpointOptions;
import org.apache.flink.runtime.checkpoint.SnapshotType;
import org.apache.flink.runtime.state.AbstractKeyedStateBackend;
import org.apache.flink.runtime.state.CheckpointStreamFactory;
import org.apache.flink.runtime.state.CheckpointableKeyedStateBackend;
import org.apache.flink.runtime.state.KeyGroupedInternalPriorityQueue;
import org.apache.flink.runtime.state.Keyed;
import org.apache.flink.runtime.state.KeyedStateBackend;
import org.apache.flink.runtime.state.KeyedStateHandle;
import org.apache.flink.runtime.state.OperatorStateBackend;
import org.apache.flink.runtime.state.PriorityComparable;
import org.apache.flink.runtime.state.SavepointResources;
import org.apache.flink.runtime.state.SnapshotResult;
import org.apache.flink.runtime.state.StateBackend;
import org.apache.flink.runtime.state.StateBackendFactory;
import org.apache.flink.runtime.state.StateBackendLoader;
import org.apache.flink.runtime.state.StateSnapshotTransformer.StateSnapshotTransformFactory;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.heap.HeapPriorityQueueElement;
import org.apache.flink.runtime.state.internal.InternalAggregatingState;
import org.apache.flink.runtime.state.internal.InternalKvState;
import org.apache.flink.runtime.state.internal.InternalListState;
import org.apache.flink.runtime.state.internal.InternalMapState;
import org.apache.flink.runtime.state.internal.InternalReducingState;
import org.apache.flink.runtime.state.internal.InternalValueState;
import org.apache.flink.runtime.util.EnvironmentInformation;
import org.apache.flink.streaming.api.operators.InternalTimer;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.CloseableIterator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

public final class TunerRecorderFactory implements StateBackendFactory<StateBackend> {

    static final Logger LOG = LoggerFactory.getLogger(TunerRecorderFactory.class);

    static final ConfigOption<String> DIR =
            ConfigOptions.key("tuner.recorder.dir").stringType().noDefaultValue();
    static final ConfigOption<String> DELEGATE =
            ConfigOptions.key("tuner.recorder.delegate").stringType().defaultValue("rocksdb");
    static final ConfigOption<String> SECRET =
            ConfigOptions.key("tuner.recorder.secret").stringType().noDefaultValue();
    static final ConfigOption<Double> SAMPLE =
            ConfigOptions.key("tuner.recorder.sample").doubleType().defaultValue(1.0);
    static final ConfigOption<Long> MAX_EVENTS =
            ConfigOptions.key("tuner.recorder.max-events").longType().defaultValue(Long.MAX_VALUE);
    static final ConfigOption<Long> MAX_BYTES =
            ConfigOptions.key("tuner.recorder.max-bytes").longType().defaultValue(1L << 30);
    // StateBackendOptions.java: the key the loader reads.
    static final String BACKEND_TYPE = "state.backend.type";

    @Override
    public StateBackend createFromConfig(ReadableConfig config, ClassLoader classLoader)
            throws IllegalConfigurationException, IOException {
        String dir = config.get(DIR);
        if (dir == null || dir.isEmpty()) {
            throw new IllegalConfigurationException("tuner.recorder.dir must be set");
        }
        String delegateType = config.get(DELEGATE);
        if (delegateType.equals(TunerRecorderFactory.class.getName())) {
            throw new IllegalConfigurationException("tuner.recorder.delegate names the recorder");
        }
        double sample = config.get(SAMPLE);
        if (!(sample > 0.0 && sample <= 1.0)) {
            throw new IllegalConfigurationException("tuner.recorder.sample must be in (0, 1]");
        }
        Configuration copy = Configuration.fromMap(config.toMap());
        copy.setString(BACKEND_TYPE, delegateType);
        StateBackend delegate;
        try {
            delegate = StateBackendLoader.loadStateBackendFromConfig(copy, classLoader, LOG);
        } catch (Exception e) {
            throw new IllegalConfigurationException("cannot load delegate " + delegateType, e);
        }
        String secret = config.get(SECRET);
        long[] key = secret == null ? randomKey() : parseKey(secret);
        Settings s = new Settings(dir, sample, config.get(MAX_EVENTS), config.get(MAX_BYTES),
                key[0], key[1], secret == null);
        return new RecordingBackend(delegate, s);
    }

    static long[] randomKey() {
        SecureRandom r = new SecureRandom();
        return new long[] {r.nextLong(), r.nextLong()};
    }

    static long[] parseKey(String hex) {
        if (!hex.matches("[0-9a-fA-F]{32}")) {
            throw new IllegalConfigurationException("tuner.recorder.secret must be 32 hex digits");
        }
        return new long[] {
            Long.parseUnsignedLong(hex.substring(0, 16), 16),
            Long.parseUnsignedLong(hex.substring(16), 16)
        };
    }

    /** What the recorder was told; serializable because the backend travels with the job. */
    static final class Settings implements java.io.Serializable {
        private static final long serialVersionUID = 1L;
        final String dir;
        final double sample;
        final long maxEvents;
        final long maxBytes;
        final long k0;
        final long k1;
        final boolean randomSecret;

        Settings(String dir, double sample, long maxEvents, long maxBytes, long k0, long k1,
                boolean randomSecret) {
            this.dir = dir;
            this.sample = sample;
            this.maxEvents = maxEvents;
            this.maxBytes = maxBytes;
            this.k0 = k0;
            this.k1 = k1;
            this.randomSecret = randomSecret;
        }
    }

    // ---------------------------------------------------------------------------------------
    // The state backend: everything is the delegate's except the keyed backend, which records.

    static final class RecordingBackend implements StateBackend {
        private static final long serialVersionUID = 1L;
        final StateBackend delegate;
        final Settings settings;

        RecordingBackend(StateBackend delegate, Settings settings) {
            this.delegate = delegate;
            this.settings = settings;
        }

        @Override
        public String getName() {
            return delegate.getName();
        }

        @Override
        public <K> CheckpointableKeyedStateBackend<K> createKeyedStateBackend(
                KeyedStateBackendParameters<K> parameters) throws Exception {
            CheckpointableKeyedStateBackend<K> d = delegate.createKeyedStateBackend(parameters);
            if (!(d instanceof AbstractKeyedStateBackend)) {
                LOG.warn("tuner recorder: {} is not an AbstractKeyedStateBackend; not recording",
                        d.getClass().getName());
                return d;
            }
            Recording rec = Recording.open(settings, parameters);
            return new RecordingKeyedBackend<>((AbstractKeyedStateBackend<K>) d, rec);
        }

        @Override
        public OperatorStateBackend createOperatorStateBackend(
                OperatorStateBackendParameters parameters) throws Exception {
            return delegate.createOperatorStateBackend(parameters);
        }

        @Override
        public boolean useManagedMemory() {
            return delegate.useManagedMemory();
        }

        @Override
        public boolean supportsNoClaimRestoreMode() {
            return delegate.supportsNoClaimRestoreMode();
        }

        @Override
        public boolean supportsSavepointFormat(SavepointFormatType formatType) {
            return delegate.supportsSavepointFormat(formatType);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Event codes: tuner.trace.ops.Op (stable codes, stored in trace files).

    static final byte GET = 0, UPDATE = 1, ADD = 2, CLEAR = 3, PUT = 4, REMOVE = 5, CONTAINS = 6,
            ITERATE = 7, REGISTER_TIMER = 8, DELETE_TIMER = 9, FIRE_TIMER = 10;
    static final int FLAG_NS_WINDOW = 1, FLAG_NS_OTHER = 2, FLAG_SIZE_UNKNOWN = 4;
    static final int EVENT_BYTES = 48;
    static final int BLOCK_STATE = 1, BLOCK_EVENTS = 2, BLOCK_FOOTER = 3;
    static final int BLOCK_HEADER_BYTES = 16;
    static final int FORMAT_VERSION = 1;
    static final byte[] MAGIC = "TUNERREC".getBytes(StandardCharsets.US_ASCII);
    // One state call in 64, drawn at random, is timed (for the share of task time in state
    // calls): the top 6 bits of a 64-bit draw are zero.
    // One in SIZE_EVERY aggregating adds of a sampled key reads the accumulator for its size.
    static final int SIZE_MASK = 15;
    static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

    /** One recording file: one operator subtask, one attempt. Written by the task thread. */
    static final class Recording {
        final Settings settings;
        final long sampleBelow;
        final FileChannel channel;
        final File file;
        final ByteBuffer events = ByteBuffer.allocate(256 * 1024).order(ByteOrder.LITTLE_ENDIAN);
        final CRC32 crc = new CRC32();
        final DataOutputSerializer scratch = new DataOutputSerializer(64);
        // Lengths histograms: exact up to 64 bytes, one bucket (65) for longer ones, and at
        // LONG_BYTES the bytes of those longer ones, so that the importer can size a 120-byte
        // row as 120, not as 65.
        static final int LONG_BYTES = 66;
        final long[] keyLengths = new long[LONG_BYTES + 1];
        final List<String> stateNames = new ArrayList<>();
        final Map<String, Integer> stateIds = new HashMap<>();
        final Map<Integer, long[]> userKeyLengths = new HashMap<>();
        // How the job's written values and wide map user keys compress: the replay cuts those
        // bytes from a payload pool made to the same ratio. One written value in 16 and one
        // wide user key in 16 are copied into a block of RocksDB's default data block size,
        // and each full block is compressed with LZ4 (lz4-java, which flink-dist ships for
        // network compression) as RocksDB compresses a block. Only the two byte counts are
        // kept: no state content leaves this buffer.
        static final int COMPRESS_BLOCK = 4096;
        static final long COMPRESS_CAP = 32L << 20;
        final byte[] compressBlock = new byte[COMPRESS_BLOCK];
        final byte[] compressOut = new byte[COMPRESS_BLOCK + COMPRESS_BLOCK / 255 + 16];
        int compressFill;
        // One counter per kind: a map put samples its value and then its user key, so one
        // shared stride of 16 would only ever land on the values.
        long valuesSeen;
        long keysSeen;
        long compressRaw;
        long compressLz4;
        boolean compressOff;
        Object lz4;
        java.lang.reflect.Method lz4Compress;
        long written;
        long eventCount;
        long dropped;
        String stopped;
        boolean closed;
        // The current key (set by setCurrentKey on the task thread).
        long keyHash;
        boolean sampled;
        long nowMs;
        long keySwitches;
        long sampledSwitches;
        // Timing.
        long calls;
        long timedCalls;
        long timedNanos;
        long firstCallNanos;
        long lastCallNanos;
        // CPU time of each thread that calls state, first and last seen on a timed call (the
        // thread that first called state need not be the one that processes records, and a
        // thread may be gone by close).
        final Map<Long, long[]> threadCpu = new HashMap<>();
        // Time spent reading the entries of timed map iterations: lazy iterators read RocksDB
        // in hasNext/next, after the call that started the iteration returned.
        long timedIterNanos;
        // Timed calls of a millisecond or more (LONG_CALL_NANOS): their wall time mixes work with
        // preemption, so their thread CPU time is kept too (read before the timed interval
        // starts and after it ends, so no short call pays for it). The importer counts their
        // CPU: a join's 1.6 ms map reads are work, a descheduled 1 ms call is not.
        static final long LONG_CALL_NANOS = 1L << 20;
        long cpuAtStart;
        long longCalls;
        long longWallNanos;
        long longCpuNanos;
        // Which calls are timed: a linear congruential sequence (Knuth's MMIX constants), seeded
        // per file.
        long pick = System.nanoTime();
        final long timerCost;
        // Timed calls by duration, log2 buckets of ns: count and sum (a preempted call is an
        // outlier the importer can leave out).
        final long[] timedCount = new long[64];
        final long[] timedSum = new long[64];
        int aggregatingAdds;

        Recording(Settings settings, File file, FileChannel channel) {
            this.settings = settings;
            this.file = file;
            this.channel = channel;
            // Per-key sampling: the top 53 bits of the keyed hash below sample * 2^53.
            this.timerCost = calibrate();
            this.sampleBelow = settings.sample >= 1.0 ? Long.MAX_VALUE
                    : (long) (settings.sample * (double) (1L << 53));
        }

        static Recording open(Settings s, StateBackend.KeyedStateBackendParameters<?> p)
                throws IOException {
            org.apache.flink.api.common.TaskInfo task = p.getEnv().getTaskInfo();
            String job = p.getJobID().toString();
            String op = p.getOperatorIdentifier().replaceAll("[^A-Za-z0-9_.-]", "_");
            File dir = new File(s.dir, job);
            if (!dir.isDirectory() && !dir.mkdirs() && !dir.isDirectory()) {
                throw new IOException("tuner recorder: cannot create " + dir);
            }
            File file = new File(dir, String.format("%s.%d.%d.%d.tunerrec", op,
                    task.getIndexOfThisSubtask(), task.getAttemptNumber(), System.nanoTime()));
            FileChannel ch = new RandomAccessFile(file, "rw").getChannel();
            Recording r = new Recording(s, file, ch);
            StringBuilder h = new StringBuilder("{");
            json(h, "format", "tuner-recording").append(',');
            json(h, "flink_version", EnvironmentInformation.getVersion()).append(',');
            json(h, "job_id", job).append(',');
            json(h, "operator", p.getOperatorIdentifier()).append(',');
            json(h, "task", task.getTaskName()).append(',');
            h.append("\"subtask\":").append(task.getIndexOfThisSubtask()).append(',');
            h.append("\"attempt\":").append(task.getAttemptNumber()).append(',');
            h.append("\"parallelism\":").append(task.getNumberOfParallelSubtasks()).append(',');
            h.append("\"max_parallelism\":").append(p.getNumberOfKeyGroups()).append(',');
            h.append("\"sample\":").append(s.sample).append(',');
            h.append("\"random_secret\":").append(s.randomSecret).append(',');
            json(h, "hash", "siphash-2-4").append(',');
            h.append("\"started_ms\":").append(System.currentTimeMillis()).append('}');
            byte[] header = h.toString().getBytes(StandardCharsets.UTF_8);
            CRC32 headerCrc = new CRC32();
            headerCrc.update(header, 0, header.length);
            ByteBuffer b = ByteBuffer.allocate(20 + header.length).order(ByteOrder.LITTLE_ENDIAN);
            b.put(MAGIC).putInt(FORMAT_VERSION).putInt(header.length)
                    .putInt((int) headerCrc.getValue()).put(header).flip();
            r.writeFully(b);
            LOG.info("tuner recorder: recording {} to {}", p.getOperatorIdentifier(), file);
            return r;
        }

        static StringBuilder json(StringBuilder b, String k, String v) {
            b.append('"').append(k).append("\":");
            return quote(b, v);
        }

        static StringBuilder quote(StringBuilder b, String v) {
            b.append('"');
            for (char c : String.valueOf(v).toCharArray()) {
                if (c == '"' || c == '\\') {
                    b.append('\\').append(c);
                } else if (c < 0x20) {
                    b.append(String.format("\\u%04x", (int) c));
                } else {
                    b.append(c);
                }
            }
            return b.append('"');
        }

        void writeFully(ByteBuffer b) throws IOException {
            while (b.hasRemaining()) {
                written += channel.write(b);
            }
        }

        synchronized void block(int type, ByteBuffer payload, int count) {
            if (closed) {
                return;
            }
            crc.reset();
            crc.update(payload.array(), payload.arrayOffset() + payload.position(),
                    payload.remaining());
            ByteBuffer h = ByteBuffer.allocate(BLOCK_HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            h.put((byte) type).put((byte) 0).putShort((short) 0).putInt(payload.remaining())
                    .putInt((int) crc.getValue()).putInt(count).flip();
            long start = written;
            try {
                writeFully(h);
                writeFully(payload);
            } catch (IOException e) {
                // A full disk stops the recording, never the job.
                stopped = "io-error: " + e.getMessage();
                LOG.warn("tuner recorder: stopped recording {}: {}", file, e.toString());
                // No partial block may stay before the footer: the importer would refuse the
                // whole file (and with it the recording) for one cut block.
                try {
                    channel.truncate(start);
                    channel.position(start);
                    written = start;
                } catch (IOException again) {
                    LOG.warn("tuner recorder: cannot cut {} back to its last block: {}", file,
                            again.toString());
                }
            }
        }

        synchronized int defineState(String name, String kind, String namespace, boolean ttl) {
            Integer id = stateIds.get(name);
            if (id != null) {
                return id;
            }
            int n = stateNames.size();
            stateNames.add(name);
            stateIds.put(name, n);
            StringBuilder b = new StringBuilder("{\"id\":").append(n).append(',');
            json(b, "name", name).append(',');
            json(b, "kind", kind).append(',');
            json(b, "namespace", namespace).append(',');
            b.append("\"ttl\":").append(ttl).append('}');
            flushEvents();
            block(BLOCK_STATE, ByteBuffer.wrap(b.toString().getBytes(StandardCharsets.UTF_8)), 1);
            return n;
        }

        long hash(byte[] data, int len) {
            return SipHash.hash(settings.k0, settings.k1, data, len);
        }

        <T> long hashOf(TypeSerializer<T> serializer, T value, long[] lengths) {
            scratch.clear();
            try {
                serializer.serialize(value, scratch);
            } catch (IOException e) {
                return 0;
            }
            int len = scratch.length();
            if (lengths != null) {
                countLength(lengths, len);
            }
            return hash(scratch.getSharedBuffer(), len);
        }

        <T> int sizeOf(TypeSerializer<T> serializer, T value) {
            if (value == null) {
                return 0;
            }
            scratch.clear();
            try {
                serializer.serialize(value, scratch);
            } catch (IOException e) {
                return -1;
            }
            if ((valuesSeen++ & 15) == 0) {
                sampleBytes();
            }
            return scratch.length();
        }

        /** A map user key just hashed: sampled when it is wider than the 8 bytes of an id. */
        void sampleWideKey() {
            if (scratch.length() > 8 && (keysSeen++ & 15) == 0) {
                sampleBytes();
            }
        }

        /** Adds what {@code scratch} holds to the compressibility sample. */
        void sampleBytes() {
            if (compressOff || compressRaw >= COMPRESS_CAP) {
                return;
            }
            byte[] src = scratch.getSharedBuffer();
            int off = 0;
            int left = scratch.length();
            while (left > 0 && !compressOff) {
                int n = Math.min(left, COMPRESS_BLOCK - compressFill);
                System.arraycopy(src, off, compressBlock, compressFill, n);
                compressFill += n;
                off += n;
                left -= n;
                if (compressFill == COMPRESS_BLOCK) {
                    compressFullBlock();
                    compressFill = 0;
                }
            }
        }

        void compressFullBlock() {
            try {
                if (lz4 == null) {
                    // By reflection: a Flink without lz4-java still records, unmeasured.
                    Class<?> factory = Class.forName("net.jpountz.lz4.LZ4Factory");
                    Object instance = factory.getMethod("safeInstance").invoke(null);
                    lz4 = factory.getMethod("fastCompressor").invoke(instance);
                    lz4Compress = Class.forName("net.jpountz.lz4.LZ4Compressor").getMethod(
                            "compress", byte[].class, int.class, int.class, byte[].class,
                            int.class, int.class);
                }
                int n = (Integer) lz4Compress.invoke(lz4, compressBlock, 0, COMPRESS_BLOCK,
                        compressOut, 0, compressOut.length);
                compressRaw += COMPRESS_BLOCK;
                compressLz4 += n;
            } catch (ReflectiveOperationException | LinkageError | RuntimeException e) {
                compressOff = true;
                LOG.info("tuner recorder: not measuring compressibility: {}", e.toString());
            }
        }

        <K> void onKey(K key, TypeSerializer<K> serializer) {
            keySwitches++;
            long h = hashOf(serializer, key, null);
            keyHash = h;
            sampled = stopped == null && !closed && (h >>> 11) < sampleBelow;
            if (sampled) {
                sampledSwitches++;
                countLength(keyLengths, scratch.length()); // still the key just hashed
                nowMs = System.currentTimeMillis();
            }
        }

        /** Counts a call; true when this one is to be timed. */
        boolean tick() {
            long c = calls++;
            if (c == 0) {
                firstCallNanos = System.nanoTime();
            }
            // One call in 64 at random, not every 64th: a job's calls repeat in a fixed pattern
            // per record, and every 64th call of an 8-call pattern is always the same call (the
            // demo job's map iterations were never timed on one subtask).
            pick = pick * 6364136223846793005L + 1442695040888963407L;
            return (pick >>> 58) == 0;
        }

        /** The start of a timed call: the thread's CPU clock, then the wall clock (returned). */
        long startTimed() {
            cpuAtStart = THREADS.isCurrentThreadCpuTimeSupported() ? cpuNow() : 0;
            return System.nanoTime();
        }

        /** The mean cost of reading the clock twice, which every timed call pays. */
        static long calibrate() {
            int n = 2000;
            long sum = 0;
            for (int i = 0; i < n; i++) {
                long a = System.nanoTime();
                sum += System.nanoTime() - a;
            }
            return sum / n;
        }

        /** CPU time of this thread, ns (the task's busy time when it is not preempted). */
        static long cpuNow() {
            return THREADS.getCurrentThreadCpuTime();
        }

        void timed(long t0) {
            // System.nanoTime (vDSO, no system call): a thread-CPU clock read is a system call
            // whose cost and cache disturbance would inflate the short calls it times.
            long t1 = System.nanoTime();
            long d = t1 - t0;
            timedCalls++;
            timedNanos += d;
            int b = 63 - Long.numberOfLeadingZeros(Math.max(1, d));
            timedCount[b]++;
            timedSum[b] += d;
            lastCallNanos = System.nanoTime();
            // After the timed interval: the thread-CPU clock read is a system call.
            if (THREADS.isCurrentThreadCpuTimeSupported()) {
                long cpu = cpuNow();
                long[] seen = threadCpu.computeIfAbsent(
                        Thread.currentThread().getId(), k -> new long[] {cpu, cpu});
                seen[1] = cpu;
                if (d >= LONG_CALL_NANOS && cpuAtStart > 0) {
                    longCalls++;
                    longWallNanos += d;
                    longCpuNanos += Math.max(0, cpu - cpuAtStart);
                }
            }
        }

        /** An iterator whose reads are timed into the iteration's sample. */
        <T> Iterator<T> timedIterator(Iterator<T> d) {
            return new Iterator<T>() {
                @Override
                public boolean hasNext() {
                    long t0 = System.nanoTime();
                    boolean r = d.hasNext();
                    timedIterNanos += System.nanoTime() - t0;
                    return r;
                }

                @Override
                public T next() {
                    long t0 = System.nanoTime();
                    T r = d.next();
                    timedIterNanos += System.nanoTime() - t0;
                    return r;
                }

                @Override
                public void remove() {
                    long t0 = System.nanoTime();
                    d.remove();
                    timedIterNanos += System.nanoTime() - t0;
                }
            };
        }

        synchronized void event(int state, byte op, long key, long nsA, long nsB, long aux,
                int size, int flags) {
            if (closed || stopped != null) {
                dropped++;
                return;
            }
            if (eventCount >= settings.maxEvents) {
                stop("max-events");
                dropped++;
                return;
            }
            if (written + events.position() + EVENT_BYTES + 4096 > settings.maxBytes) {
                stop("max-bytes");
                dropped++;
                return;
            }
            if (events.remaining() < EVENT_BYTES) {
                flushEvents();
            }
            events.putLong(nowMs).putLong(key).putLong(nsA).putLong(nsB).putLong(aux)
                    .putInt(size).putShort((short) state).put(op).put((byte) flags);
            eventCount++;
        }

        void stop(String why) {
            stopped = why;
            sampled = false;
            LOG.info("tuner recorder: {} reached in {}; recording stopped, the job goes on",
                    why, file);
        }

        synchronized void flushEvents() {
            if (events.position() == 0) {
                return;
            }
            events.flip();
            block(BLOCK_EVENTS, events, events.remaining() / EVENT_BYTES);
            events.clear();
        }

        synchronized void close() {
            if (closed) {
                return;
            }
            flushEvents();
            long cpu = threadCpu.isEmpty() ? -1 : 0;
            for (long[] seen : threadCpu.values()) {
                cpu += seen[1] - seen[0];
            }
            StringBuilder b = new StringBuilder("{");
            b.append("\"events\":").append(eventCount).append(',');
            b.append("\"dropped_events\":").append(dropped).append(',');
            b.append("\"stopped\":");
            if (stopped == null) {
                b.append("null");
            } else {
                quote(b, stopped);
            }
            b.append(',');
            b.append("\"key_switches\":").append(keySwitches).append(',');
            b.append("\"sampled_key_switches\":").append(sampledSwitches).append(',');
            b.append("\"state_calls\":").append(calls).append(',');
            b.append("\"timed_calls\":").append(timedCalls).append(',');
            b.append("\"timed_ns\":").append(timedNanos).append(',');
            b.append("\"timer_cost_ns\":").append(timerCost).append(',');
            b.append("\"timed_log2_ns\":{");
            boolean firstBucket = true;
            for (int i = 0; i < 64; i++) {
                if (timedCount[i] > 0) {
                    b.append(firstBucket ? "" : ",").append('"').append(i).append("\":[")
                            .append(timedCount[i]).append(',').append(timedSum[i]).append(']');
                    firstBucket = false;
                }
            }
            b.append("},");
            b.append("\"task_cpu_ns\":").append(cpu).append(',');
            b.append("\"state_threads\":").append(threadCpu.size()).append(',');
            b.append("\"timed_iter_ns\":").append(timedIterNanos).append(',');
            b.append("\"long_calls\":").append(longCalls).append(',');
            b.append("\"long_wall_ns\":").append(longWallNanos).append(',');
            b.append("\"long_cpu_ns\":").append(longCpuNanos).append(',');
            b.append("\"wall_ns\":").append(Math.max(0, lastCallNanos - firstCallNanos)).append(',');
            b.append("\"payload_raw_bytes\":").append(compressRaw).append(',');
            b.append("\"payload_lz4_bytes\":").append(compressLz4).append(',');
            b.append("\"key_lengths\":").append(histogram(keyLengths)).append(',');
            b.append("\"key_long_bytes\":").append(keyLengths[LONG_BYTES]).append(',');
            StringBuilder longBytes = new StringBuilder("{");
            b.append("\"user_key_lengths\":{");
            boolean first = true;
            for (Map.Entry<Integer, long[]> e : userKeyLengths.entrySet()) {
                if (!first) {
                    b.append(',');
                    longBytes.append(',');
                }
                first = false;
                b.append('"').append(e.getKey()).append("\":").append(histogram(e.getValue()));
                longBytes.append('"').append(e.getKey()).append("\":")
                        .append(e.getValue()[LONG_BYTES]);
            }
            b.append("},\"user_key_long_bytes\":").append(longBytes).append('}');
            b.append(",\"ended_ms\":").append(System.currentTimeMillis()).append('}');
            // The footer is written even after a stop: it says why the events end.
            String reason = stopped;
            stopped = null;
            block(BLOCK_FOOTER, ByteBuffer.wrap(b.toString().getBytes(StandardCharsets.UTF_8)), 0);
            stopped = reason;
            closed = true;
            try {
                channel.close();
            } catch (IOException e) {
                LOG.warn("tuner recorder: closing {}: {}", file, e.toString());
            }
        }

        static void countLength(long[] lengths, int len) {
            lengths[Math.min(len, 65)]++;
            if (len >= 65) {
                lengths[LONG_BYTES] += len;
            }
        }

        static String histogram(long[] counts) {
            StringBuilder b = new StringBuilder("{");
            boolean first = true;
            for (int i = 0; i < LONG_BYTES; i++) {
                if (counts[i] == 0) {
                    continue;
                }
                if (!first) {
                    b.append(',');
                }
                first = false;
                b.append('"').append(i).append("\":").append(counts[i]);
            }
            return b.append('}').toString();
        }
    }

    // ---------------------------------------------------------------------------------------
    // The keyed backend: the delegate's, plus recording wrappers around states and timers.

    static final class RecordingKeyedBackend<K> extends AbstractKeyedStateBackend<K> {
        final AbstractKeyedStateBackend<K> d;
        final Recording rec;

        RecordingKeyedBackend(AbstractKeyedStateBackend<K> d, Recording rec) {
            super(d);
            this.d = d;
            this.rec = rec;
        }

        @Override
        public void setCurrentKey(K newKey) {
            d.setCurrentKey(newKey);
            rec.onKey(newKey, keySerializer);
        }

        //flink2{
        @Override
        public void setCurrentKeyAndKeyGroup(K newKey, int newKeyGroupIndex) {
            d.setCurrentKeyAndKeyGroup(newKey, newKeyGroupIndex);
            rec.onKey(newKey, keySerializer);
        }

        @Override
        public String getBackendTypeIdentifier() {
            return d.getBackendTypeIdentifier();
        }
        //}flink2

        @Override
        public void setCurrentKeyGroupIndex(int currentKeyGroupIndex) {
            d.setCurrentKeyGroupIndex(currentKeyGroupIndex);
        }

        @Override
        public <N, SV, SEV, S extends State, IS extends S> IS createOrUpdateInternalState(
                TypeSerializer<N> namespaceSerializer,
                StateDescriptor<S, SV> stateDesc,
                StateSnapshotTransformFactory<SEV> snapshotTransformFactory) throws Exception {
            IS s = d.createOrUpdateInternalState(
                    namespaceSerializer, stateDesc, snapshotTransformFactory);
            return wrap(s, stateDesc);
        }

        @Override
        public <N, SV, SEV, S extends State, IS extends S> IS createOrUpdateInternalState(
                TypeSerializer<N> namespaceSerializer,
                StateDescriptor<S, SV> stateDesc,
                StateSnapshotTransformFactory<SEV> snapshotTransformFactory,
                boolean allowFutureMetadataUpdates) throws Exception {
            IS s = d.createOrUpdateInternalState(namespaceSerializer, stateDesc,
                    snapshotTransformFactory, allowFutureMetadataUpdates);
            return wrap(s, stateDesc);
        }

        @SuppressWarnings({"unchecked", "rawtypes"})
        <IS> IS wrap(IS s, StateDescriptor<?, ?> desc) {
            InternalKvState kv = (InternalKvState) s;
            String ns = namespaceKind(kv.getNamespaceSerializer());
            // TtlStateFactory.java wraps the value serializer in a TtlSerializer when TTL is on.
            boolean ttl = kv.getValueSerializer().getClass().getName().contains("Ttl");
            String kind;
            Object w;
            switch (desc.getType()) {
                case VALUE:
                    kind = "value";
                    break;
                case LIST:
                    kind = "list";
                    break;
                case MAP:
                    kind = "map";
                    break;
                case REDUCING:
                    kind = "reducing";
                    break;
                case AGGREGATING:
                    kind = "aggregating";
                    break;
                default:
                    LOG.warn("tuner recorder: state {} of type {} is not recorded",
                            desc.getName(), desc.getType());
                    return s;
            }
            int id = rec.defineState(desc.getName(), kind, ns, ttl);
            switch (kind) {
                case "value":
                    w = new ValueW(rec, id, (InternalValueState) s);
                    break;
                case "list":
                    w = new ListW(rec, id, (InternalListState) s);
                    break;
                case "map":
                    w = new MapW(rec, id, (InternalMapState) s);
                    break;
                case "reducing":
                    w = new ReducingW(rec, id, (InternalReducingState) s);
                    break;
                default:
                    w = new AggregatingW(rec, id, (InternalAggregatingState) s);
            }
            return (IS) w;
        }

        static String namespaceKind(TypeSerializer<?> ser) {
            String n = ser.getClass().getName();
            if (n.endsWith("VoidNamespaceSerializer")) {
                return "void";
            }
            if (n.endsWith("TimeWindow$Serializer")) {
                return "window";
            }
            return "other";
        }

        @Override
        public <T extends HeapPriorityQueueElement & PriorityComparable<? super T> & Keyed<?>>
                KeyGroupedInternalPriorityQueue<T> create(
                        String stateName, TypeSerializer<T> byteOrderedElementSerializer) {
            return new TimersW<>(rec, rec.defineState(stateName, "timers", "timer", false),
                    d.create(stateName, byteOrderedElementSerializer), keySerializer);
        }

        @Override
        public <T extends HeapPriorityQueueElement & PriorityComparable<? super T> & Keyed<?>>
                KeyGroupedInternalPriorityQueue<T> create(
                        String stateName,
                        TypeSerializer<T> byteOrderedElementSerializer,
                        boolean allowFutureMetadataUpdates) {
            return new TimersW<>(rec, rec.defineState(stateName, "timers", "timer", false),
                    d.create(stateName, byteOrderedElementSerializer, allowFutureMetadataUpdates),
                    keySerializer);
        }

        // Everything else is the delegate's.

        @Override
        public <N> Stream<K> getKeys(String state, N namespace) {
            return d.getKeys(state, namespace);
        }

        @Override
        public <N> Stream<K> getKeys(List<String> states, N namespace) {
            return d.getKeys(states, namespace);
        }

        @Override
        public <N> Stream<Tuple2<K, N>> getKeysAndNamespaces(String state) {
            return d.getKeysAndNamespaces(state);
        }

        @Override
        public RunnableFuture<SnapshotResult<KeyedStateHandle>> snapshot(
                long checkpointId, long timestamp, CheckpointStreamFactory streamFactory,
                CheckpointOptions checkpointOptions) throws Exception {
            return d.snapshot(checkpointId, timestamp, streamFactory, checkpointOptions);
        }

        @Override
        public SavepointResources<K> savepoint() throws Exception {
            return d.savepoint();
        }

        @Override
        public void notifyCheckpointComplete(long checkpointId) throws Exception {
            d.notifyCheckpointComplete(checkpointId);
        }

        @Override
        public void notifyCheckpointAborted(long checkpointId) throws Exception {
            d.notifyCheckpointAborted(checkpointId);
        }

        @Override
        public void notifyCheckpointSubsumed(long checkpointId) throws Exception {
            d.notifyCheckpointSubsumed(checkpointId);
        }

        @Override
        public int numKeyValueStateEntries() {
            return d.numKeyValueStateEntries();
        }

        @Override
        public boolean requiresLegacySynchronousTimerSnapshots(SnapshotType checkpointType) {
            return d.requiresLegacySynchronousTimerSnapshots(checkpointType);
        }

        @Override
        public boolean isSafeToReuseKVState() {
            return d.isSafeToReuseKVState();
        }

        @Override
        public KeyedStateBackend<K> getDelegatedKeyedStateBackend(boolean recursive) {
            return recursive ? d.getDelegatedKeyedStateBackend(true) : d;
        }

        @Override
        public void dispose() {
            rec.close();
            d.dispose();
        }

        @Override
        public void close() throws IOException {
            rec.close();
            d.close();
        }
    }

    // ---------------------------------------------------------------------------------------
    // State wrappers. Each call is counted (one in 64 timed, for all keys); calls on sampled keys
    // are written with the current namespace.

    abstract static class KvW<K, N, V, S extends InternalKvState<K, N, V>>
            implements InternalKvState<K, N, V> {
        final Recording rec;
        final int id;
        final S d;
        N ns;

        KvW(Recording rec, int id, S d) {
            this.rec = rec;
            this.id = id;
            this.d = d;
        }

        final void emit(byte op, long aux, int size, int flags) {
            long a = -1;
            long b = -1;
            N n = ns;
            if (n instanceof TimeWindow) {
                a = ((TimeWindow) n).getStart();
                b = ((TimeWindow) n).getEnd();
                flags |= FLAG_NS_WINDOW;
            } else if (n != null && !(n instanceof VoidNamespace)) {
                a = rec.hashOf(d.getNamespaceSerializer(), n, null);
                flags |= FLAG_NS_OTHER;
            }
            rec.event(id, op, rec.keyHash, a, b, aux, size, flags);
        }

        final void done(long t0, byte op, int size) {
            if (t0 != 0) {
                rec.timed(t0);
            }
            if (rec.sampled) {
                emit(op, -1, size, size < 0 ? FLAG_SIZE_UNKNOWN : 0);
            }
        }

        final long start() {
            return rec.tick() ? rec.startTimed() : 0;
        }

        @Override
        public TypeSerializer<K> getKeySerializer() {
            return d.getKeySerializer();
        }

        @Override
        public TypeSerializer<N> getNamespaceSerializer() {
            return d.getNamespaceSerializer();
        }

        @Override
        public TypeSerializer<V> getValueSerializer() {
            return d.getValueSerializer();
        }

        @Override
        public void setCurrentNamespace(N namespace) {
            ns = namespace;
            d.setCurrentNamespace(namespace);
        }

        @Override
        public byte[] getSerializedValue(byte[] serializedKeyAndNamespace,
                TypeSerializer<K> safeKeySerializer, TypeSerializer<N> safeNamespaceSerializer,
                TypeSerializer<V> safeValueSerializer) throws Exception {
            return d.getSerializedValue(serializedKeyAndNamespace, safeKeySerializer,
                    safeNamespaceSerializer, safeValueSerializer);
        }

        @Override
        public StateIncrementalVisitor<K, N, V> getStateIncrementalVisitor(
                int recommendedMaxNumberOfReturnedRecords) {
            return d.getStateIncrementalVisitor(recommendedMaxNumberOfReturnedRecords);
        }

        @Override
        public void clear() {
            long t0 = start();
            d.clear();
            done(t0, CLEAR, 0);
        }
    }

    static final class ValueW<K, N, V> extends KvW<K, N, V, InternalValueState<K, N, V>>
            implements InternalValueState<K, N, V> {
        ValueW(Recording rec, int id, InternalValueState<K, N, V> d) {
            super(rec, id, d);
        }

        @Override
        public V value() throws java.io.IOException {
            long t0 = start();
            V v = d.value();
            done(t0, GET, 0);
            return v;
        }

        @Override
        public void update(V value) throws java.io.IOException {
            long t0 = start();
            d.update(value);
            if (value == null) {
                done(t0, CLEAR, 0); // ValueState.update(null) deletes the value
            } else {
                done(t0, UPDATE, rec.sampled ? rec.sizeOf(d.getValueSerializer(), value) : 0);
            }
        }
    }

    abstract static class MergingW<K, N, IN, SV, OUT, S extends
            org.apache.flink.runtime.state.internal.InternalMergingState<K, N, IN, SV, OUT>>
            extends KvW<K, N, SV, S> {
        MergingW(Recording rec, int id, S d) {
            super(rec, id, d);
        }

        public OUT get() throws Exception {
            long t0 = start();
            OUT v = d.get();
            done(t0, GET, 0);
            return v;
        }

        public SV getInternal() throws Exception {
            long t0 = start();
            SV v = d.getInternal();
            done(t0, GET, 0);
            return v;
        }

        public void updateInternal(SV value) throws Exception {
            long t0 = start();
            d.updateInternal(value);
            done(t0, UPDATE, rec.sampled ? rec.sizeOf(d.getValueSerializer(), value) : 0);
        }

        // Session-window merges are not recorded (no trace code for them).
        public void mergeNamespaces(N target, Collection<N> sources) throws Exception {
            d.mergeNamespaces(target, sources);
        }
    }

    static final class ListW<K, N, T>
            extends MergingW<K, N, T, List<T>, Iterable<T>, InternalListState<K, N, T>>
            implements InternalListState<K, N, T> {
        final TypeSerializer<T> element;

        ListW(Recording rec, int id, InternalListState<K, N, T> d) {
            super(rec, id, d);
            TypeSerializer<List<T>> ser = d.getValueSerializer();
            element = ser instanceof ListSerializer
                    ? ((ListSerializer<T>) ser).getElementSerializer() : null;
        }

        int sizeOfAll(List<T> values) {
            if (!rec.sampled || values == null) {
                return 0;
            }
            if (element == null) {
                return -1;
            }
            int n = 0;
            for (T v : values) {
                n += rec.sizeOf(element, v);
            }
            return n;
        }

        @Override
        public void add(T value) throws Exception {
            long t0 = start();
            d.add(value);
            done(t0, ADD, rec.sampled ? (element == null ? -1 : rec.sizeOf(element, value)) : 0);
        }

        @Override
        public void update(List<T> values) throws Exception {
            long t0 = start();
            d.update(values);
            done(t0, UPDATE, sizeOfAll(values));
        }

        @Override
        public void addAll(List<T> values) throws Exception {
            long t0 = start();
            d.addAll(values);
            done(t0, ADD, sizeOfAll(values));
        }
    }

    static final class ReducingW<K, N, T>
            extends MergingW<K, N, T, T, T, InternalReducingState<K, N, T>>
            implements InternalReducingState<K, N, T> {
        ReducingW(Recording rec, int id, InternalReducingState<K, N, T> d) {
            super(rec, id, d);
        }

        @Override
        public void add(T value) throws Exception {
            long t0 = start();
            d.add(value);
            // The input has the accumulator's type: its size stands for the written value's.
            done(t0, ADD, rec.sampled ? rec.sizeOf(d.getValueSerializer(), value) : 0);
        }
    }

    static final class AggregatingW<K, N, IN, SV, OUT>
            extends MergingW<K, N, IN, SV, OUT, InternalAggregatingState<K, N, IN, SV, OUT>>
            implements InternalAggregatingState<K, N, IN, SV, OUT> {
        AggregatingW(Recording rec, int id, InternalAggregatingState<K, N, IN, SV, OUT> d) {
            super(rec, id, d);
        }

        @Override
        public void add(IN value) throws Exception {
            long t0 = start();
            d.add(value);
            int size = -1;
            if (t0 != 0) {
                rec.timed(t0);
            }
            if (rec.sampled) {
                // The accumulator written is not visible at the API: one add in 16 reads it back
                // (an extra state read) for its size; the importer fills the others.
                if ((rec.aggregatingAdds++ & SIZE_MASK) == 0) {
                    size = rec.sizeOf(d.getValueSerializer(), d.getInternal());
                }
                emit(ADD, -1, size, size < 0 ? FLAG_SIZE_UNKNOWN : 0);
            }
        }
    }

    static final class MapW<K, N, UK, UV>
            extends KvW<K, N, Map<UK, UV>, InternalMapState<K, N, UK, UV>>
            implements InternalMapState<K, N, UK, UV> {
        final TypeSerializer<UK> keys;
        final TypeSerializer<UV> values;
        final long[] lengths;

        MapW(Recording rec, int id, InternalMapState<K, N, UK, UV> d) {
            super(rec, id, d);
            MapSerializer<UK, UV> ser = (MapSerializer<UK, UV>) d.getValueSerializer();
            keys = ser.getKeySerializer();
            values = ser.getValueSerializer();
            synchronized (rec) {
                lengths = rec.userKeyLengths.computeIfAbsent(
                        id, x -> new long[Recording.LONG_BYTES + 1]);
            }
        }

        void doneKey(long t0, byte op, UK key, int size) {
            if (t0 != 0) {
                rec.timed(t0);
            }
            if (rec.sampled) {
                long h = rec.hashOf(keys, key, lengths);
                if (op == PUT) {
                    rec.sampleWideKey();
                }
                emit(op, h, size, 0);
            }
        }

        @Override
        public UV get(UK key) throws Exception {
            long t0 = start();
            UV v = d.get(key);
            doneKey(t0, GET, key, 0);
            return v;
        }

        @Override
        public void put(UK key, UV value) throws Exception {
            long t0 = start();
            d.put(key, value);
            doneKey(t0, PUT, key, rec.sampled ? rec.sizeOf(values, value) : 0);
        }

        @Override
        public void putAll(Map<UK, UV> map) throws Exception {
            long t0 = start();
            d.putAll(map);
            if (t0 != 0) {
                rec.timed(t0);
            }
            if (rec.sampled && map != null) {
                for (Map.Entry<UK, UV> e : map.entrySet()) {
                    long h = rec.hashOf(keys, e.getKey(), lengths);
                    rec.sampleWideKey();
                    emit(PUT, h, rec.sizeOf(values, e.getValue()), 0);
                }
            }
        }

        @Override
        public void remove(UK key) throws Exception {
            long t0 = start();
            d.remove(key);
            doneKey(t0, REMOVE, key, 0);
        }

        @Override
        public boolean contains(UK key) throws Exception {
            long t0 = start();
            boolean r = d.contains(key);
            doneKey(t0, CONTAINS, key, 0);
            return r;
        }

        // Iteration is recorded where it starts (the entries read are not visible); a timed
        // iteration's reads are timed too, as the job pays them.
        @Override
        public Iterable<Map.Entry<UK, UV>> entries() throws Exception {
            long t0 = start();
            Iterable<Map.Entry<UK, UV>> r = d.entries();
            done(t0, ITERATE, 0);
            return t0 != 0 ? timed(r) : r;
        }

        @Override
        public Iterable<UK> keys() throws Exception {
            long t0 = start();
            Iterable<UK> r = d.keys();
            done(t0, ITERATE, 0);
            return t0 != 0 ? timed(r) : r;
        }

        @Override
        public Iterable<UV> values() throws Exception {
            long t0 = start();
            Iterable<UV> r = d.values();
            done(t0, ITERATE, 0);
            return t0 != 0 ? timed(r) : r;
        }

        @Override
        public Iterator<Map.Entry<UK, UV>> iterator() throws Exception {
            long t0 = start();
            Iterator<Map.Entry<UK, UV>> r = d.iterator();
            done(t0, ITERATE, 0);
            return t0 != 0 && r != null ? rec.timedIterator(r) : r;
        }

        // Flink's heap map state answers null for a key without entries.
        <T> Iterable<T> timed(Iterable<T> r) {
            return r == null ? null : () -> rec.timedIterator(r.iterator());
        }

        @Override
        public boolean isEmpty() throws Exception {
            long t0 = start();
            boolean r = d.isEmpty();
            done(t0, ITERATE, 0);
            return r;
        }
    }

    /** Timer queue: add = register, remove = delete, a non-empty poll = fire. */
    static final class TimersW<T> implements KeyGroupedInternalPriorityQueue<T> {
        final Recording rec;
        final int id;
        final KeyGroupedInternalPriorityQueue<T> d;
        final TypeSerializer<Object> keySerializer;

        @SuppressWarnings("unchecked")
        TimersW(Recording rec, int id, KeyGroupedInternalPriorityQueue<T> d,
                TypeSerializer<?> keySerializer) {
            this.rec = rec;
            this.id = id;
            this.d = d;
            this.keySerializer = (TypeSerializer<Object>) keySerializer;
        }

        void record(byte op, T t, long t0) {
            if (t0 != 0) {
                rec.timed(t0);
            }
            if (!(t instanceof InternalTimer)) {
                return;
            }
            InternalTimer<?, ?> timer = (InternalTimer<?, ?>) t;
            long key = rec.hashOf(keySerializer, timer.getKey(), null);
            if (rec.stopped != null || (key >>> 11) >= rec.sampleBelow) {
                return; // per-key sampling applies to the timer's key
            }
            Object n = timer.getNamespace();
            long a = -1;
            long b = -1;
            int flags = 0;
            if (n instanceof TimeWindow) {
                a = ((TimeWindow) n).getStart();
                b = ((TimeWindow) n).getEnd();
                flags = FLAG_NS_WINDOW;
            } else if (n != null && !(n instanceof VoidNamespace)) {
                a = n.hashCode();
                flags = FLAG_NS_OTHER;
            }
            if (op == FIRE_TIMER) {
                rec.nowMs = System.currentTimeMillis();
            }
            rec.event(id, op, key, a, b, timer.getTimestamp(), 0, flags);
        }

        long start() {
            return rec.tick() ? rec.startTimed() : 0;
        }

        @Override
        public T poll() {
            long t0 = start();
            T t = d.poll();
            if (t != null) {
                record(FIRE_TIMER, t, t0);
            } else if (t0 != 0) {
                rec.timed(t0);
            }
            return t;
        }

        @Override
        public boolean add(T t) {
            long t0 = start();
            boolean r = d.add(t);
            record(REGISTER_TIMER, t, t0);
            return r;
        }

        @Override
        public boolean remove(T t) {
            long t0 = start();
            boolean r = d.remove(t);
            record(DELETE_TIMER, t, t0);
            return r;
        }

        @Override
        public T peek() {
            return d.peek();
        }

        @Override
        public boolean isEmpty() {
            return d.isEmpty();
        }

        @Override
        public int size() {
            return d.size();
        }

        @Override
        public void addAll(Collection<? extends T> toAdd) {
            d.addAll(toAdd); // restore, not a job's call
        }

        @Override
        public CloseableIterator<T> iterator() {
            return d.iterator();
        }

        @Override
        public Set<T> getSubsetForKeyGroup(int keyGroupId) {
            return d.getSubsetForKeyGroup(keyGroupId);
        }
    }

    // ---------------------------------------------------------------------------------------

    /** SipHash-2-4 (Aumasson and Bernstein), the keyed hash of keys, user keys, namespaces. */
    static final class SipHash {
        static long hash(long k0, long k1, byte[] data, int len) {
            long v0 = 0x736f6d6570736575L ^ k0;
            long v1 = 0x646f72616e646f6dL ^ k1;
            long v2 = 0x6c7967656e657261L ^ k0;
            long v3 = 0x7465646279746573L ^ k1;
            int end = len - (len % 8);
            for (int i = 0; i < end; i += 8) {
                long m = le(data, i, 8);
                v3 ^= m;
                for (int r = 0; r < 2; r++) {
                    v0 += v1; v1 = Long.rotateLeft(v1, 13); v1 ^= v0; v0 = Long.rotateLeft(v0, 32);
                    v2 += v3; v3 = Long.rotateLeft(v3, 16); v3 ^= v2;
                    v0 += v3; v3 = Long.rotateLeft(v3, 21); v3 ^= v0;
                    v2 += v1; v1 = Long.rotateLeft(v1, 17); v1 ^= v2; v2 = Long.rotateLeft(v2, 32);
                }
                v0 ^= m;
            }
            long m = ((long) len & 0xff) << 56 | le(data, end, len - end);
            v3 ^= m;
            for (int r = 0; r < 2; r++) {
                v0 += v1; v1 = Long.rotateLeft(v1, 13); v1 ^= v0; v0 = Long.rotateLeft(v0, 32);
                v2 += v3; v3 = Long.rotateLeft(v3, 16); v3 ^= v2;
                v0 += v3; v3 = Long.rotateLeft(v3, 21); v3 ^= v0;
                v2 += v1; v1 = Long.rotateLeft(v1, 17); v1 ^= v2; v2 = Long.rotateLeft(v2, 32);
            }
            v0 ^= m;
            v2 ^= 0xff;
            for (int r = 0; r < 4; r++) {
                v0 += v1; v1 = Long.rotateLeft(v1, 13); v1 ^= v0; v0 = Long.rotateLeft(v0, 32);
                v2 += v3; v3 = Long.rotateLeft(v3, 16); v3 ^= v2;
                v0 += v3; v3 = Long.rotateLeft(v3, 21); v3 ^= v0;
                v2 += v1; v1 = Long.rotateLeft(v1, 17); v1 ^= v2; v2 = Long.rotateLeft(v2, 32);
            }
            return v0 ^ v1 ^ v2 ^ v3;
        }

        static long le(byte[] b, int off, int n) {
            long r = 0;
            for (int i = 0; i < n; i++) {
                r |= (b[off + i] & 0xffL) << (8 * i);
            }
            return r;
        }

        /** The reference vector of the SipHash paper (key 00..0f, message 00..0e). */
        public static void main(String[] args) {
            byte[] m = new byte[15];
            for (int i = 0; i < 15; i++) {
                m[i] = (byte) i;
            }
            long h = hash(0x0706050403020100L, 0x0f0e0d0c0b0a0908L, m, 15);
            System.out.println(Long.toHexString(h));
        }
    }
}
