// Preloaded into the MCP servers of the agent image (node --require): Node's fetch ignores
// HTTP(S)_PROXY, so without this a server would try to reach the internet directly, which a
// sandbox cannot. With a proxy in the environment (the runner gives the CLI and its stdio MCP
// servers the egress proxy's loopback URL), every fetch goes through it, NO_PROXY honoured.
"use strict";
const env = process.env;
if (env.HTTPS_PROXY || env.https_proxy || env.HTTP_PROXY || env.http_proxy) {
  const { EnvHttpProxyAgent, setGlobalDispatcher } = require("undici");
  setGlobalDispatcher(new EnvHttpProxyAgent());
}
