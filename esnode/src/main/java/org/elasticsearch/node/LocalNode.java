package org.elasticsearch.node;

import org.elasticsearch.env.Environment;
import org.elasticsearch.plugins.MockPluginsService;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.PluginsLoader;
import org.elasticsearch.plugins.PluginsService;

import java.util.Collection;

/**
 * A {@link Node} whose plugins come from the classpath instead of a plugins folder.
 *
 * <p>It lives in Elasticsearch's own package because the construction hooks it needs
 * ({@code NodeConstruction}, {@code NodeServiceProvider}) are package-private. Unlike the test
 * framework's MockNode it never touches ESTestCase, whose static start-up refuses to run as root
 * and installs a SecurityManager. These hooks change between minors: compile against the exact
 * pinned version.
 */
public final class LocalNode extends Node {
    public LocalNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
        super(
            NodeConstruction.prepareConstruction(
                environment,
                null, // no plugin bundles on disk: the service below supplies the plugins
                new NodeServiceProvider() {
                    @Override
                    PluginsService newPluginService(Environment env, PluginsLoader loader) {
                        return new MockPluginsService(env.settings(), env, plugins);
                    }
                },
                true
            )
        );
    }
}
