"""Stand-in for ``ESI::Monitoring::MonitoringTarget``: a target registered with the collector.

Why: in the original deployment this resource POSTed its properties to the Collector Agent
(``http://collector-agents-se:7070/targets``), which answered with the target's ``id`` and
``link`` and from then on probed the device and wrote ``/monitoring/...`` into etcd (PROTOCOL.md
section 8). The stack outputs expose ``monitoring_target_id`` (``get_resource``) and
``monitoring_link`` (``get_attr: [.., link]``).

For now no collector is contacted: the id is a uuid4 and ``link`` is
``<ESI_COLLECTOR_URL>/targets/<id>`` (``ESI_COLLECTOR_URL`` read from the Heat process'
environment when the target is created; default ``http://collector-agents-se:7070``). The
target record (the properties ``type``, ``resource_type``, ``resource_id``, ``field_name``,
``tenant_id``, ``version``, ``properties``, ``syncer_properties`` plus ``id`` and ``link``) is kept
in the resource data (key ``target``, JSON) and is the ``target`` attribute.

All collector traffic goes through ``_collector_create``, ``_collector_update`` and
``_collector_delete``: to register targets with a real collector over HTTP, implement those
three (POST ``/targets``, PUT ``/targets/<id>``, DELETE ``/targets/<id>``) and keep the rest.

Updates: a change of ``version`` replaces the target (Heat creates a new one, then deletes the
old one), as the corpus shows (a stack update with a new config version gave a new
``monitoring_target_id``); any other change updates the target in place (same id).
"""

import json
import os
import uuid

from heat.engine.plugins import esi_base as base  # loaded by Heat from this folder

DEFAULT_COLLECTOR_URL = 'http://collector-agents-se:7070'

TARGET_FIELDS = ('type', 'resource_type', 'resource_id', 'field_name', 'tenant_id',
                 'version', 'properties', 'syncer_properties')


def collector_url():
    return (os.environ.get('ESI_COLLECTOR_URL') or DEFAULT_COLLECTOR_URL).rstrip('/')


class MonitoringTarget(base.FakeResource):

    replace_on_change = frozenset(['version'])

    attributes_schema = {
        'link': base.attr('URL of the target at the collector.'),
        'target': base.attr('The target record registered with the collector.'),
    }

    # ---- the collector seams (no HTTP yet) ---------------------------------------------------
    def _collector_create(self, body):
        """Register a target; returns the collector's record (with ``id`` and ``link``)."""
        target_id = str(uuid.uuid4())
        return dict(body, id=target_id, link='%s/targets/%s' % (collector_url(), target_id))

    def _collector_update(self, target, body):
        """Change a registered target in place; returns the new record."""
        return dict(target, **body)

    def _collector_delete(self, target):
        """Unregister a target (must succeed when it is already gone)."""

    # ---- Heat lifecycle ----------------------------------------------------------------------
    def _target_body(self):
        return {field: self.prop(field) for field in TARGET_FIELDS}

    def _stored_target(self):
        raw = self.data().get('target')
        return json.loads(raw) if raw else None

    def _store_target(self, target):
        self.data_set('target', json.dumps(target, sort_keys=True))

    def handle_create(self):
        target = self._collector_create(self._target_body())
        self.resource_id_set(target['id'])
        self._store_target(target)

    def handle_update(self, json_snippet, tmpl_diff, prop_diff):
        # (self.properties still holds the old values here; prop_diff the changed ones)
        if prop_diff:
            body = self._target_body()
            body.update((k, v) for k, v in prop_diff.items() if k in TARGET_FIELDS)
            target = self._stored_target() or {'id': self.resource_id}
            self._store_target(self._collector_update(target, body))

    def handle_delete(self):
        if self.resource_id is not None:
            self._collector_delete(self._stored_target() or {'id': self.resource_id})
        return None

    def _attribute_values(self):
        target = self._stored_target() or {}
        return {'link': target.get('link'), 'target': target or None}


def resource_mapping():
    return {'ESI::Monitoring::MonitoringTarget': MonitoringTarget}
