/*
 * Prints the ConfigOptions declared as public static fields of Flink classes, as JSON on stdout.
 *
 * Usage: java -cp '<pyflink>/lib/*:<classes>' ExtractCatalog CLASS[=KEY,KEY...] ...
 * A class given alone contributes all its options; with "=KEY,..." only the options whose key,
 * fallback key or deprecated key is listed. Run by tools/catalog/extract_catalog.py.
 */

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.FallbackKey;
import org.apache.flink.configuration.description.Description;
import org.apache.flink.configuration.description.Formatter;
import org.apache.flink.configuration.description.TextElement;

public final class ExtractCatalog {

    /** Renders a Description as plain text: links as their text, lists as "- item" lines. */
    static final class PlainTextFormatter extends Formatter {
        @Override
        protected void formatLink(StringBuilder state, String link, String description) {
            state.append(description.isEmpty() ? link : description);
        }

        @Override
        protected void formatLineBreak(StringBuilder state) {
            state.append('\n');
        }

        @Override
        protected void formatText(
                StringBuilder state,
                String format,
                String[] elements,
                EnumSet<TextElement.TextStyle> styles) {
            state.append(String.format(format, (Object[]) elements));
        }

        @Override
        protected void formatList(StringBuilder state, String[] entries) {
            for (String entry : entries) {
                state.append("\n- ").append(entry);
            }
            state.append('\n');
        }

        @Override
        protected Formatter newInstance() {
            return new PlainTextFormatter();
        }
    }

    public static void main(String[] args) throws Exception {
        StringBuilder out = new StringBuilder("[\n");
        boolean first = true;
        for (String arg : args) {
            String[] parts = arg.split("=", 2);
            Class<?> holder = Class.forName(parts[0]);
            Set<String> wanted =
                    parts.length == 2 ? new HashSet<>(Arrays.asList(parts[1].split(","))) : null;
            for (Field field : holder.getFields()) {
                if (!Modifier.isStatic(field.getModifiers())
                        || !ConfigOption.class.isAssignableFrom(field.getType())) {
                    continue;
                }
                ConfigOption<?> option = (ConfigOption<?>) field.get(null);
                if (wanted != null && !matches(option, wanted)) {
                    continue;
                }
                out.append(first ? "" : ",\n").append(toJson(holder, field, option));
                first = false;
            }
        }
        System.out.println(out.append("\n]"));
    }

    private static boolean matches(ConfigOption<?> option, Set<String> wanted) {
        if (wanted.contains(option.key())) {
            return true;
        }
        for (FallbackKey fallback : option.fallbackKeys()) {
            if (wanted.contains(fallback.getKey())) {
                return true;
            }
        }
        return false;
    }

    private static String toJson(Class<?> holder, Field field, ConfigOption<?> option)
            throws Exception {
        // getClazz() and isList() are package-private in ConfigOption.
        Method getClazz = ConfigOption.class.getDeclaredMethod("getClazz");
        getClazz.setAccessible(true);
        Method isList = ConfigOption.class.getDeclaredMethod("isList");
        isList.setAccessible(true);
        Class<?> clazz = (Class<?>) getClazz.invoke(option);
        boolean list = (Boolean) isList.invoke(option);

        List<String> fallbackKeys = new ArrayList<>();
        List<String> deprecatedKeys = new ArrayList<>();
        for (FallbackKey fallback : option.fallbackKeys()) {
            (fallback.isDeprecated() ? deprecatedKeys : fallbackKeys).add(fallback.getKey());
        }

        StringBuilder json = new StringBuilder("  {");
        json.append("\"key\": ").append(quote(option.key()));
        json.append(", \"class\": ").append(quote(holder.getName()));
        json.append(", \"field\": ").append(quote(field.getName()));
        json.append(", \"type\": ").append(quote(clazz.isEnum() ? "Enum" : clazz.getSimpleName()));
        json.append(", \"list\": ").append(list);
        if (clazz.isEnum()) {
            List<String> names = new ArrayList<>();
            List<String> printed = new ArrayList<>();
            for (Object constant : clazz.getEnumConstants()) {
                names.add(((Enum<?>) constant).name());
                printed.add(constant.toString());
            }
            json.append(", \"enum_class\": ").append(quote(clazz.getName()));
            json.append(", \"enum_names\": ").append(quoteAll(names));
            json.append(", \"enum_strings\": ").append(quoteAll(printed));
        }
        json.append(", \"default\": ").append(quote(defaultAsFlinkPrintsIt(option)));
        json.append(", \"fallback_keys\": ").append(quoteAll(fallbackKeys));
        json.append(", \"deprecated_keys\": ").append(quoteAll(deprecatedKeys));
        Description description = option.description();
        json.append(", \"description\": ")
                .append(quote(new PlainTextFormatter().format(description).trim()));
        return json.append('}').toString();
    }

    /**
     * The default as Flink writes it into a configuration map (Configuration.toMap goes through
     * ConfigurationUtils.convertToString: "64 mb", "30 d", lists joined with ';').
     */
    @SuppressWarnings({"unchecked", "rawtypes"})
    private static String defaultAsFlinkPrintsIt(ConfigOption<?> option) {
        if (!option.hasDefaultValue() || option.defaultValue() == null) {
            return null;
        }
        Configuration configuration = new Configuration();
        configuration.set((ConfigOption) option, option.defaultValue());
        Map<String, String> map = configuration.toMap();
        return map.get(option.key());
    }

    private static String quoteAll(List<String> values) {
        StringBuilder json = new StringBuilder("[");
        for (int i = 0; i < values.size(); i++) {
            json.append(i == 0 ? "" : ", ").append(quote(values.get(i)));
        }
        return json.append(']').toString();
    }

    private static String quote(String value) {
        if (value == null) {
            return "null";
        }
        StringBuilder json = new StringBuilder("\"");
        for (char c : value.toCharArray()) {
            switch (c) {
                case '"':
                    json.append("\\\"");
                    break;
                case '\\':
                    json.append("\\\\");
                    break;
                case '\n':
                    json.append("\\n");
                    break;
                case '\t':
                    json.append("\\t");
                    break;
                default:
                    if (c < 0x20 || c > 0x7e) {
                        json.append(String.format("\\u%04x", (int) c));
                    } else {
                        json.append(c);
                    }
            }
        }
        return json.append('"').toString();
    }
}
