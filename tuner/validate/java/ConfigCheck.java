/*
 * Does Flink accept a configuration file? Loads each given conf directory with Flink's own loader
 * (GlobalConfiguration.loadConfiguration: config.yaml in Flink 2.x, flink-conf.yaml in 1.x) and
 * reads every key through the typed ConfigOption that declares it, found by reflection over the
 * public static ConfigOption fields of the option classes below (their key or a fallback key).
 *
 * Output, one line per key:   <dir> TAB <key> TAB OK|UNKNOWN|INVALID TAB <typed value or error>
 * Exit status 0 when every key of every directory is OK, 1 otherwise.
 *
 * Compiled and run by tuner.validate (tests/validate/test_config_acceptance.py) against the jars
 * of each Flink version; it only needs flink-core's configuration classes to compile.
 */

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeSet;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.FallbackKey;
import org.apache.flink.configuration.GlobalConfiguration;

public final class ConfigCheck {

    // Flink 2.x and 1.20 spellings; a class missing from one version is skipped.
    static final String[] OPTION_CLASSES = {
        "org.apache.flink.state.rocksdb.RocksDBConfigurableOptions",
        "org.apache.flink.state.rocksdb.RocksDBOptions",
        "org.apache.flink.state.rocksdb.RocksDBNativeMetricOptions",
        "org.apache.flink.contrib.streaming.state.RocksDBConfigurableOptions",
        "org.apache.flink.contrib.streaming.state.RocksDBOptions",
        "org.apache.flink.contrib.streaming.state.RocksDBNativeMetricOptions",
        "org.apache.flink.configuration.CheckpointingOptions",
        "org.apache.flink.configuration.StateBackendOptions",
        "org.apache.flink.configuration.StateRecoveryOptions",
        "org.apache.flink.configuration.TaskManagerOptions",
        "org.apache.flink.streaming.api.environment.ExecutionCheckpointingOptions",
    };

    public static void main(String[] args) throws Exception {
        Map<String, ConfigOption<?>> options = new LinkedHashMap<>();
        for (String name : OPTION_CLASSES) {
            Class<?> c;
            try {
                c = Class.forName(name);
            } catch (ClassNotFoundException absent) {
                continue;
            }
            for (Field f : c.getFields()) {
                if (Modifier.isStatic(f.getModifiers())
                        && ConfigOption.class.isAssignableFrom(f.getType())) {
                    ConfigOption<?> o = (ConfigOption<?>) f.get(null);
                    options.putIfAbsent(o.key(), o);
                    for (FallbackKey k : o.fallbackKeys()) {
                        options.putIfAbsent(k.getKey(), o);
                    }
                }
            }
        }
        boolean ok = true;
        for (String dir : args) {
            Configuration conf;
            try {
                conf = GlobalConfiguration.loadConfiguration(dir);
            } catch (RuntimeException e) {
                System.out.println(dir + "\t*\tINVALID\t" + oneLine(e));
                ok = false;
                continue;
            }
            for (String key : new TreeSet<>(conf.keySet())) {
                ConfigOption<?> o = options.get(key);
                if (o == null) {
                    System.out.println(dir + "\t" + key + "\tUNKNOWN\t");
                    ok = false;
                    continue;
                }
                try {
                    Object v = conf.get(o);
                    System.out.println(dir + "\t" + key + "\tOK\t" + v);
                } catch (RuntimeException e) {
                    System.out.println(dir + "\t" + key + "\tINVALID\t" + oneLine(e));
                    ok = false;
                }
            }
        }
        System.exit(ok ? 0 : 1);
    }

    static String oneLine(Throwable e) {
        StringBuilder b = new StringBuilder(String.valueOf(e.getMessage()));
        for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
            b.append(" / ").append(c.getMessage());
        }
        return b.toString().replace('\n', ' ').replace('\t', ' ');
    }

    private ConfigCheck() {}
}
