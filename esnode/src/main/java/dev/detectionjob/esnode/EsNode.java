package dev.detectionjob.esnode;

import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.Appender;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.config.Configuration;
import org.apache.logging.log4j.core.config.LoggerConfig;
import org.elasticsearch.common.logging.HeaderWarningAppender;
import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.http.HttpServerTransport;
import org.elasticsearch.env.Environment;
import org.elasticsearch.node.LocalNode;
import org.elasticsearch.node.Node;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.transport.netty4.Netty4Plugin;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * One Elasticsearch node on loopback, built from the server jar and the netty4 transport plugin,
 * loaded from the classpath by {@link LocalNode}. Alone it is a single-node cluster; given seed
 * hosts it joins (or, with initial master nodes, bootstraps) a cluster of such nodes.
 *
 * <p>Arguments: {@code WORKDIR --http-port N [--name NAME] [--transport-port N]
 * [--seed-hosts HOST:PORT,...] [--initial-masters NAME,...] [--plugins CLASS,...]
 * [--settings KEY=VALUE,...] [--watch-stdin]}. Data and logs live under WORKDIR. {@code --plugins}
 * names more plugin classes to load from the classpath (the ES|QL node's x-pack plugins), by name so
 * that this source compiles without their jars; {@code --settings} adds node settings. When started, the bound HTTP port is written to {@code WORKDIR/http.port} and
 * printed as {@code HTTP_PORT=<n>}. The node stops on SIGTERM/SIGINT, or on end of standard input
 * when {@code --watch-stdin} is given (so a parent that dies takes the node with it).
 */
public final class EsNode {
    private EsNode() {}

    private static final String USAGE = "usage: EsNode WORKDIR --http-port N [--name NAME] [--transport-port N] "
        + "[--seed-hosts HOST:PORT,...] [--initial-masters NAME,...] [--plugins CLASS,...] [--settings KEY=VALUE,...] "
        + "[--watch-stdin]";

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            usage();
        }
        Path work = Path.of(args[0]).toAbsolutePath();
        Map<String, String> options = new HashMap<>();
        boolean watchStdin = false;
        for (int i = 1; i < args.length; i++) {
            if (args[i].equals("--watch-stdin")) {
                watchStdin = true;
            } else if (args[i].startsWith("--") && i + 1 < args.length) {
                options.put(args[i].substring(2), args[++i]);
            } else {
                usage();
            }
        }
        if (!options.containsKey("http-port")) {
            usage();
        }

        LogConfigurator.configureWithoutConfig(Settings.builder().put("logger.level", "WARN").build());
        sendDeprecationsAsWarningHeaders();

        Settings.Builder settings = Settings.builder()
            .put("path.home", work.resolve("home").toString())
            .put("path.data", work.resolve("data").toString())
            .put("path.logs", work.resolve("logs").toString())
            .put("cluster.name", "detection-job-local")
            .put("node.name", options.getOrDefault("name", "es0"))
            .put("network.host", "127.0.0.1")
            .put("http.port", options.get("http-port"))
            .put("transport.port", options.getOrDefault("transport-port", "0"))
            .put("node.processors", 2)
            .put("indices.breaker.total.use_real_memory", false)
            // Disks on shared machines can be nearly full; watermarks would block shard allocation.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("action.destructive_requires_name", false);
        if (options.containsKey("seed-hosts")) {
            settings.putList("discovery.seed_hosts", List.of(options.get("seed-hosts").split(",")));
            if (options.containsKey("initial-masters")) {
                // Only on a cluster's very first start: once formed, the cluster lives in the data folders.
                settings.putList("cluster.initial_master_nodes", List.of(options.get("initial-masters").split(",")));
            }
        } else {
            settings.put("discovery.type", "single-node");
        }

        if (options.containsKey("settings")) {
            for (String pair : options.get("settings").split(",")) {
                int equals = pair.indexOf('=');
                if (equals <= 0) {
                    usage();
                }
                settings.put(pair.substring(0, equals), pair.substring(equals + 1));
            }
        }
        List<Class<? extends Plugin>> plugins = new ArrayList<>();
        plugins.add(Netty4Plugin.class);
        if (options.containsKey("plugins")) {
            for (String name : options.get("plugins").split(",")) {
                plugins.add(Class.forName(name).asSubclass(Plugin.class));
            }
        }

        Node node = new LocalNode(new Environment(settings.build(), work.resolve("config")), plugins);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "esnode-shutdown"));

        node.start();
        int port = node.injector().getInstance(HttpServerTransport.class).boundAddress().publishAddress().getPort();
        Path portFile = work.resolve("http.port");
        Path tmp = work.resolve("http.port.tmp");
        Files.writeString(tmp, Integer.toString(port), StandardCharsets.US_ASCII);
        Files.move(tmp, portFile, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        System.out.println("HTTP_PORT=" + port);
        System.out.flush();

        if (watchStdin) {
            InputStream in = System.in;
            byte[] buf = new byte[256];
            while (in.read(buf) >= 0) {
                // Drain until the parent closes the pipe.
            }
            System.exit(0);
        }
        stopped.await();
    }

    private static void usage() {
        System.err.println(USAGE);
        System.exit(64);
    }

    /**
     * Deprecation messages reach clients as {@code Warning} response headers only through
     * {@link HeaderWarningAppender}, which the distribution attaches to the deprecation logger in
     * its log4j2.properties. Attach it here too, so the local node warns clients as a real one does.
     * The messages also stay in the node's log (the logger is additive).
     */
    private static void sendDeprecationsAsWarningHeaders() {
        LoggerContext context = (LoggerContext) LogManager.getContext(false);
        Configuration config = context.getConfiguration();
        Appender headers = HeaderWarningAppender.createAppender("header_warning", null);
        headers.start();
        config.addAppender(headers);
        LoggerConfig deprecation = new LoggerConfig("org.elasticsearch.deprecation", Level.WARN, true);
        deprecation.addAppender(headers, null, null);
        config.addLogger("org.elasticsearch.deprecation", deprecation);
        context.updateLoggers();
    }
}
