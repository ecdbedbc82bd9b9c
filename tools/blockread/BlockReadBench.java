import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;

import org.rocksdb.BlockBasedTableConfig;
import org.rocksdb.ColumnFamilyDescriptor;
import org.rocksdb.ColumnFamilyHandle;
import org.rocksdb.ColumnFamilyOptions;
import org.rocksdb.DBOptions;
import org.rocksdb.LRUCache;
import org.rocksdb.ReadOptions;
import org.rocksdb.RocksDB;
import org.rocksdb.Statistics;
import org.rocksdb.TickerType;

/**
 * Point reads through FRocksDB's JNI (the RocksDB Flink runs) on a database written by
 * tools/blockread/bench.py: the keys file lists the keys to read, 8 bytes each. Prints the
 * reading thread's CPU time, block-cache misses and bytes read, one "name value" per line.
 */
public final class BlockReadBench {
    /** A ticker by name; 0 when this RocksDB build has none (FRocksDB 6.20 lacks the level ones). */
    private static long ticker(Statistics stats, String name) {
        try {
            return stats.getTickerCount(TickerType.valueOf(name));
        } catch (IllegalArgumentException absent) {
            return 0;
        }
    }

    public static void main(String[] args) throws Exception {
        String path = args[0];
        byte[] keys = Files.readAllBytes(Paths.get(args[1]));
        long cacheBytes = Long.parseLong(args[2]);
        long blockSize = Long.parseLong(args[3]);
        RocksDB.loadLibrary();
        try (Statistics stats = new Statistics();
                LRUCache cache = new LRUCache(cacheBytes, -1, false, 0.1);
                DBOptions db = new DBOptions().setStatistics(stats);
                ReadOptions ro = new ReadOptions()) {
            BlockBasedTableConfig table = new BlockBasedTableConfig();
            table.setBlockCache(cache);
            table.setBlockSize(blockSize);
            table.setCacheIndexAndFilterBlocks(true);
            table.setPinL0FilterAndIndexBlocksInCache(true);
            ColumnFamilyOptions cf = new ColumnFamilyOptions().setTableFormatConfig(table);
            List<ColumnFamilyDescriptor> cfs = new ArrayList<>();
            cfs.add(new ColumnFamilyDescriptor(RocksDB.DEFAULT_COLUMN_FAMILY, cf));
            List<ColumnFamilyHandle> handles = new ArrayList<>();
            try (RocksDB rdb = RocksDB.openReadOnly(db, path, cfs, handles)) {
                ThreadMXBean mx = ManagementFactory.getThreadMXBean();
                ByteBuffer bb = ByteBuffer.wrap(keys);
                int n = keys.length / 8;
                byte[] k = new byte[8];
                // Warm the JIT on the first tenth, then measure the rest.
                int warm = n / 10;
                long found = 0;
                for (int i = 0; i < warm; i++) {
                    bb.get(k);
                    if (rdb.get(handles.get(0), ro, k) != null) found++;
                }
                long miss0 = stats.getTickerCount(TickerType.BLOCK_CACHE_MISS);
                long read0 = ticker(stats, "NON_LAST_LEVEL_READ_BYTES")
                        + ticker(stats, "LAST_LEVEL_READ_BYTES");
                long cpu0 = mx.getCurrentThreadCpuTime();
                for (int i = warm; i < n; i++) {
                    bb.get(k);
                    if (rdb.get(handles.get(0), ro, k) != null) found++;
                }
                long cpu = mx.getCurrentThreadCpuTime() - cpu0;
                System.out.println("library frocksdb-jni");
                System.out.println("gets " + (n - warm));
                System.out.println("found " + found);
                System.out.println("cpu_s " + cpu / 1e9);
                System.out.println("misses " + (stats.getTickerCount(TickerType.BLOCK_CACHE_MISS) - miss0));
                System.out.println("bytes_read " + (ticker(stats, "NON_LAST_LEVEL_READ_BYTES")
                        + ticker(stats, "LAST_LEVEL_READ_BYTES") - read0));
                for (ColumnFamilyHandle h : handles) h.close();
            }
        }
    }
}
