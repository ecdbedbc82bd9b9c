/*
 * A small keyed job that counts its own state calls: the recorder's end-to-end check and the job
 * the recorder's overhead is measured on. Compiles against Flink 2.x and 1.20.
 *
 *     java -cp '<pyflink>/lib/*:<classes>[:tuner-recorder.jar]' RecorderDemoJob \
 *         <records> <keys> <parallelism> <config file or "-"> <result.json>
 *
 * The config file holds "key: value" lines (what `tuner recorder config` prints); they are set on
 * the job's Configuration, so the local MiniCluster loads the recorder as a cluster would.
 * Job: source (event time = index * 10 ms) -> keyBy -> KeyedProcessFunction with a ValueState
 * counter, a MapState, a ListState and event-time timers -> keyBy -> a 1 s tumbling window with
 * a ReduceFunction (ReducingState in a TimeWindow namespace, window timers) -> discard.
 * Its result JSON holds the calls it made (Flink accumulators, summed over subtasks) and the
 * job's net runtime.
 */

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.Iterator;
import java.util.Map;
import java.util.TreeMap;

import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.util.Collector;

public final class RecorderDemoJob {

    static final String[] COUNTERS = {
        "value.get", "value.update", "map.get", "map.put", "map.remove", "map.iterate",
        "list.add", "list.get", "list.clear", "timer.register", "timer.delete", "timer.fire",
        "window.in"
    };

    public static void main(String[] args) throws Exception {
        long records = Long.parseLong(args[0]);
        long keys = Long.parseLong(args[1]);
        int parallelism = Integer.parseInt(args[2]);
        String configFile = args[3];
        String resultFile = args[4];

        Configuration conf = new Configuration();
        conf.setString("state.backend.type", "rocksdb");
        if (!configFile.equals("-")) {
            for (String line : Files.readAllLines(Paths.get(configFile), StandardCharsets.UTF_8)) {
                String t = line.trim();
                int colon = t.indexOf(": ");
                if (t.isEmpty() || t.startsWith("#") || colon < 0) {
                    continue;
                }
                conf.setString(t.substring(0, colon).trim(), t.substring(colon + 2).trim());
            }
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(parallelism);
        env.setMaxParallelism(128);

        DataGeneratorSource<Long> source = new DataGeneratorSource<>(
                i -> i, records, RateLimiterStrategy.noOp(), Types.LONG);
        env.fromSource(source,
                        WatermarkStrategy.<Long>forMonotonousTimestamps()
                                .withTimestampAssigner((i, ts) -> i * 10),
                        "numbers")
                .keyBy(i -> keyOf(i, keys), Types.LONG)
                .process(new Stateful())
                .returns(Types.TUPLE(Types.LONG, Types.LONG))
                .keyBy(t -> t.f0, Types.LONG)
                .window(TumblingEventTimeWindows.of(Duration.ofSeconds(1)))
                .reduce((a, b) -> Tuple2.of(a.f0, a.f1 + b.f1))
                .sinkTo(new DiscardingSink<>());

        JobExecutionResult result = env.execute("tuner-recorder-demo");
        Map<String, Long> counts = new TreeMap<>();
        for (String c : COUNTERS) {
            Object v = result.getAllAccumulatorResults().get(c);
            counts.put(c, v == null ? 0L : ((Number) v).longValue());
        }
        StringBuilder b = new StringBuilder("{\"net_runtime_ms\":")
                .append(result.getNetRuntime()).append(",\"records\":").append(records)
                .append(",\"counts\":{");
        boolean first = true;
        for (Map.Entry<String, Long> e : counts.entrySet()) {
            b.append(first ? "" : ",").append('"').append(e.getKey()).append("\":")
                    .append(e.getValue());
            first = false;
        }
        b.append("}}");
        Files.write(Paths.get(resultFile), b.toString().getBytes(StandardCharsets.UTF_8));
    }

    /** A skewed key: low ids are drawn far more often (u^3 of a hashed index). */
    static long keyOf(long i, long keys) {
        long z = (i + 1) * 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        double u = ((z ^ (z >>> 31)) >>> 11) / (double) (1L << 53);
        return (long) (keys * u * u * u);
    }

    static final class Stateful extends KeyedProcessFunction<Long, Long, Tuple2<Long, Long>> {
        transient ValueState<Long> count;
        transient MapState<Long, Long> recent;
        transient ListState<Long> buffer;
        transient Map<String, LongCounter> counters;

        void init() {
            count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Types.LONG));
            recent = getRuntimeContext().getMapState(
                    new MapStateDescriptor<>("recent", Types.LONG, Types.LONG));
            buffer = getRuntimeContext().getListState(
                    new ListStateDescriptor<>("buffer", Types.LONG));
            counters = new TreeMap<>();
            for (String c : COUNTERS) {
                LongCounter counter = new LongCounter();
                getRuntimeContext().addAccumulator(c, counter);
                counters.put(c, counter);
            }
        }

        void inc(String c) {
            counters.get(c).add(1L);
        }

        @Override
        public void processElement(Long i, Context ctx, Collector<Tuple2<Long, Long>> out)
                throws Exception {
            if (count == null) {
                init();
            }
            Long c = count.value();
            inc("value.get");
            count.update(c == null ? 1L : c + 1);
            inc("value.update");
            if (i % 3 == 0) {
                recent.get(i % 7);
                inc("map.get");
            }
            recent.put(i % 5, i);
            inc("map.put");
            if (i % 11 == 0) {
                recent.remove(i % 5);
                inc("map.remove");
            }
            buffer.add(i);
            inc("list.add");
            long at = ctx.timestamp() + 500;
            ctx.timerService().registerEventTimeTimer(at);
            inc("timer.register");
            if (i % 13 == 0) {
                ctx.timerService().deleteEventTimeTimer(at);
                inc("timer.delete");
            }
            out.collect(Tuple2.of(ctx.getCurrentKey(), 1L));
            inc("window.in");
        }

        @Override
        public void onTimer(long timestamp, OnTimerContext ctx, Collector<Tuple2<Long, Long>> out)
                throws Exception {
            if (count == null) {
                init();
            }
            inc("timer.fire");
            // A join's pattern: every entry of the key's map read (the recorder times the reads).
            for (Map.Entry<Long, Long> e : recent.entries()) {
                e.getValue();
            }
            inc("map.iterate");
            Iterator<Long> it = buffer.get().iterator();
            while (it.hasNext()) {
                it.next();
            }
            inc("list.get");
            buffer.clear();
            inc("list.clear");
        }
    }

    private RecorderDemoJob() {}
}
