// Loaded with `--require` into the Node-RED that `edge-infer run` starts: when the gateway's
// process goes away without stopping it (kill -9, a crash), the IPC channel closes and Node-RED
// stops as on SIGTERM, rather than living on as an orphan holding its port.
if (process.channel) {
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  // Listening must not keep the process alive by itself (a listener refs the channel).
  process.channel.unref();
}
