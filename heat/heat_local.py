#!/usr/bin/env python3
"""Run the real Heat REST API and the real Heat engine in ONE process.

This is a small replacement for the `heat-all` console script, which Heat
removed in 25.0.0 (2025.2).  The API WSGI application (built from Heat's own
api-paste.ini, "noauth" flavor) and heat.engine.service.EngineService talk to
each other over oslo.messaging's in-memory ``fake://`` transport, which only
works inside a single process -- hence this launcher.

Usage: heat_local.py --config-file heat.conf [--host 127.0.0.1] [--port 8004]
                     [--pid-file FILE]
"""
# flake8: noqa: E402
import argparse
import signal
import socketserver
import sys
import threading
from wsgiref import simple_server

# Same backend the stock heat-engine command selects (no eventlet).
from oslo_service import backend
backend.init_backend(backend.BackendType.THREADING)

from oslo_config import cfg
import oslo_i18n as i18n
from oslo_log import log as logging

from heat.common import config
from heat.common import messaging
from heat.engine import template
from heat.rpc import api as rpc_api
from heat import version

LOG = logging.getLogger('heat-local')


class _ThreadingWSGIServer(socketserver.ThreadingMixIn,
                           simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _Handler(simple_server.WSGIRequestHandler):
    def log_message(self, fmt, *args):  # access log -> heat log file
        LOG.info('%s %s', self.address_string(), fmt % args)


def _tune_sqlite(busy_timeout_ms=60000):
    """Make SQLite usable by a multi-threaded api+engine process.

    oslo.db opens a new sqlite connection per transaction (NullPool) and
    emits a plain (deferred) BEGIN.  Under concurrent stack operations two
    threads then both read, and the one that later tries to write fails
    *immediately* with "database is locked" (SQLite's deadlock avoidance
    does not wait on the busy handler).  We therefore:
      * switch the DB file to WAL (readers never block the writer),
      * set a generous busy timeout,
      * start every transaction with BEGIN IMMEDIATE, i.e. serialise
        transactions on the write lock instead of failing.
    """
    import sqlalchemy
    from heat.db import api as db_api

    eng = db_api.get_engine()
    if eng.dialect.name != 'sqlite':
        return

    @sqlalchemy.event.listens_for(eng, 'connect')
    def _on_connect(dbapi_con, rec):
        dbapi_con.execute('PRAGMA busy_timeout = %d' % busy_timeout_ms)
        dbapi_con.execute('PRAGMA journal_mode = WAL')

    # replace oslo.db's "begin" listener (emits a plain BEGIN) by ours;
    # oslo.db's commit/rollback listeners still clear the marker.
    for fn in list(eng.dispatch.begin):
        if getattr(fn, '__name__', '') == '_sqlite_emit_begin':
            sqlalchemy.event.remove(eng, 'begin', fn)

    @sqlalchemy.event.listens_for(eng, 'begin')
    def _begin_immediate(conn):
        if 'in_transaction' not in conn.info:
            conn.exec_driver_sql('BEGIN IMMEDIATE')
            conn.info['in_transaction'] = True

    LOG.info('sqlite tuning enabled (WAL, busy_timeout=%dms, '
             'BEGIN IMMEDIATE)', busy_timeout_ms)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--config-file', required=True)
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, default=8004)
    ap.add_argument('--pid-file', help='write our PID here')
    ap.add_argument('--stop-timeout', type=float, default=5.0,
                    help='seconds to wait for the engine on SIGTERM')
    ap.add_argument('--no-sqlite-tuning', action='store_true',
                    help='use oslo.db defaults for sqlite (fails under '
                         'concurrent stack operations)')
    a = ap.parse_args()
    if a.pid_file:
        import os
        with open(a.pid_file, 'w') as f:
            f.write('%d\n' % os.getpid())

    i18n.enable_lazy()
    conf = cfg.CONF
    logging.register_options(conf)
    conf(args=['--config-file', a.config_file], project='heat',
         prog='heat-all', version=version.version_info.version_string())
    logging.setup(conf, 'heat-all')
    config.set_config_defaults()
    messaging.setup()          # one global fake:// transport for api+engine
    config.startup_sanity_check()
    if not a.no_sqlite_tuning:
        _tune_sqlite()

    mgr = template._get_template_extension_manager()
    if not mgr or not mgr.names():
        sys.exit('ERROR: No template format plugins registered')

    from heat.engine import service as engine_service
    engine = engine_service.EngineService(conf.host, rpc_api.ENGINE_TOPIC)
    engine.start()             # in-process; no oslo.service launcher/fork
    LOG.info('Heat engine %s started', engine.engine_id)

    app = config.load_paste_app('heat-api')
    server = _ThreadingWSGIServer((a.host, a.port), _Handler)
    server.set_app(app)

    def _shutdown(signum, frame):
        LOG.info('Signal %s received, shutting down', signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)

    LOG.info('Heat API listening on http://%s:%d/', a.host, a.port)
    print('heat-local: listening on http://%s:%d/' % (a.host, a.port),
          flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()

        def _stop_engine():
            try:
                engine.stop()
            except Exception:  # best effort
                LOG.exception('engine stop failed')

        # EngineService.stop() waits for running stack operations; do not
        # let e.g. a TestResource sleeping 30 s block the shutdown.
        t = threading.Thread(target=_stop_engine, daemon=True)
        t.start()
        t.join(a.stop_timeout)
        if t.is_alive():
            LOG.warning('engine did not stop within %ss, exiting anyway '
                        '(stacks still in progress stay *_IN_PROGRESS)',
                        a.stop_timeout)
        LOG.info('stopped')
        # Do not wait for lingering non-daemon library threads (executors,
        # timers): flush logs and exit right away.
        import logging as _pylogging
        import os
        _pylogging.shutdown()
        os._exit(0)


if __name__ == '__main__':
    main()
