package dev.detectionjob.esnode;

import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.http.HttpServerTransport;
import org.elasticsearch.env.Environment;
import org.elasticsearch.node.LocalNode;
import org.elasticsearch.node.Node;
import org.elasticsearch.transport.netty4.Netty4Plugin;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * One single-node Elasticsearch cluster on loopback, built from the server jar and the
 * netty4 transport plugin, loaded from the classpath by {@link LocalNode}.
 *
 * <p>Arguments: {@code WORKDIR HTTP_PORT [--watch-stdin]}. Data and logs live under WORKDIR.
 * When started, the bound HTTP port is written to {@code WORKDIR/http.port} and printed as
 * {@code HTTP_PORT=<n>}. The node stops on SIGTERM/SIGINT, or on end of standard input when
 * {@code --watch-stdin} is given (so a parent that dies takes the node with it).
 */
public final class EsNode {
    private EsNode() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: EsNode WORKDIR HTTP_PORT [--watch-stdin]");
            System.exit(64);
        }
        Path work = Path.of(args[0]).toAbsolutePath();
        String httpPort = args[1];
        boolean watchStdin = args.length > 2 && args[2].equals("--watch-stdin");

        LogConfigurator.configureWithoutConfig(Settings.builder().put("logger.level", "WARN").build());

        Settings settings = Settings.builder()
            .put("path.home", work.resolve("home").toString())
            .put("path.data", work.resolve("data").toString())
            .put("path.logs", work.resolve("logs").toString())
            .put("cluster.name", "detection-job-local")
            .put("node.name", "es0")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", httpPort)
            .put("transport.port", "0")
            .put("node.processors", 2)
            .put("indices.breaker.total.use_real_memory", false)
            // Disks on shared machines can be nearly full; watermarks would block shard allocation.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("action.destructive_requires_name", false)
            .build();

        Node node = new LocalNode(new Environment(settings, work.resolve("config")), List.of(Netty4Plugin.class));
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
}
