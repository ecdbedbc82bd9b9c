/*
 * Runs one Nexmark SQL query on a local Flink MiniCluster and writes the job's own runtime
 * (tools/nexmark/run.py prepares its inputs; the 'nexmark' connector comes from the jar that
 * tools/nexmark/build.py builds from upstream's sources).
 *
 *     java -cp '<pyflink>/lib/*:<classes>:nexmark-flink.jar[:tuner-recorder.jar]' NexmarkQueryRun \
 *         <statements file> <config dir or "-"> <settings file> <result.json>
 *
 * statements file: SQL statements separated by NUL characters, the last one the INSERT.
 * config dir: a directory holding a Flink 2.x config.yaml (read by Flink's own loader), applied
 * first; settings file: "key: value" lines applied on top (the harness and the recorder lines).
 * The result JSON holds Flink's JobExecutionResult.getNetRuntime (the job's own time, without
 * the JVM and cluster start), the time from submitting the INSERT to its end, and the CPU time
 * the whole JVM spent in that interval: a counted figure that a busy neighbour on a shared
 * machine moves far less than it moves the runtime.
 */

import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;

import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.GlobalConfiguration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;

public final class NexmarkQueryRun {

    public static void main(String[] args) throws Exception {
        String[] statements =
                new String(Files.readAllBytes(Paths.get(args[0])), StandardCharsets.UTF_8)
                        .split("\0");
        String configDir = args[1];
        String settingsFile = args[2];
        String resultFile = args[3];

        Configuration conf = new Configuration();
        if (!configDir.equals("-")) {
            conf.addAll(GlobalConfiguration.loadConfiguration(configDir));
        }
        for (String line : Files.readAllLines(Paths.get(settingsFile), StandardCharsets.UTF_8)) {
            String t = line.trim();
            int colon = t.indexOf(": ");
            if (t.isEmpty() || t.startsWith("#") || colon < 0) {
                continue;
            }
            conf.setString(t.substring(0, colon).trim(), t.substring(colon + 2).trim());
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        StreamTableEnvironment tEnv = StreamTableEnvironment.create(
                env, EnvironmentSettings.newInstance().inStreamingMode().withConfiguration(conf)
                        .build());

        for (int i = 0; i < statements.length - 1; i++) {
            tEnv.executeSql(statements[i]);
        }
        // The HotSpot bean has the process's CPU time (every thread, JIT and GC included).
        com.sun.management.OperatingSystemMXBean os =
                (com.sun.management.OperatingSystemMXBean)
                        ManagementFactory.getOperatingSystemMXBean();
        long cpuAtSubmit = os.getProcessCpuTime();
        long submitted = System.nanoTime();
        TableResult insert = tEnv.executeSql(statements[statements.length - 1]);
        JobClient client = insert.getJobClient().orElseThrow(
                () -> new IllegalStateException("the last statement started no job"));
        JobExecutionResult result = client.getJobExecutionResult().get();
        long submitToEndMs = (System.nanoTime() - submitted) / 1_000_000L;
        long jobCpuMs = (os.getProcessCpuTime() - cpuAtSubmit) / 1_000_000L;

        String json = "{\"net_runtime_ms\":" + result.getNetRuntime()
                + ",\"submit_to_end_ms\":" + submitToEndMs
                + ",\"job_cpu_ms\":" + jobCpuMs
                + ",\"job_id\":\"" + result.getJobID() + "\"}";
        Files.write(Paths.get(resultFile), json.getBytes(StandardCharsets.UTF_8));
    }
}
