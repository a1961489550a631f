"""Shared base of heat-reconciler's fake vendor resources (no resource types here).

Why: the corpus templates use resource types of the original ESI deployment (OpenContrail's
``OS::Contrail::*``, ESI's own ``ESI::VNF::*`` and ``ESI::Monitoring::MonitoringTarget``). The
standalone test Heat (heat/start-heat.sh) has neither those plugins nor the services behind them,
so the sibling modules of this folder register stand-ins built on ``FakeResource``:

* **Any property is accepted**, like ``OS::Heat::None`` - but, unlike it, the values are kept and
  resolved (``get_param``, ``str_replace``, ``get_resource`` ... all work), so attributes can be
  derived from them. Every property gets a schema of type ``Any``, added per resource from the
  keys its definition actually uses. Nothing is type-checked; the real plugins would check more.
* ``get_resource`` yields a UUID: the ``uuid`` property when the template passes a non-empty one
  (Contrail objects are created with the Gohan id), else ``uuid4()``; subclasses may override
  ``_new_resource_id`` (``OS::Contrail::ExistingResource`` looks objects up by fq_name, so it
  uses a stable ``uuid5`` of it).
* ``get_attr`` resolves the attributes a subclass declares in ``attributes_schema`` from the
  values ``_attribute_values()`` derives from the properties; a declared attribute that is not
  derived returns the property of the same name, else ``None``. Heat rejects a template whose
  ``get_attr`` names an undeclared attribute ("The Referenced Attribute (r a) is incorrect."),
  so declare every attribute a template reads.
* Create, update and delete touch nothing outside Heat. Changing a property updates in place
  (same id) unless it is listed in ``replace_on_change`` (then Heat replaces the resource: a new
  one is created, then the old one deleted).

Heat loads every module of a ``plugin_dirs`` folder as ``heat.engine.plugins.<module>``; this one
only defines helpers (no ``resource_mapping``), the others import it by that name.
"""

import uuid

from heat.engine import attributes
from heat.engine import properties
from heat.engine import resource

DEFAULT_DOMAIN = 'default-domain'
GLOBAL_SYSTEM_CONFIG = 'default-global-system-config'

# Namespace for the stable ids of objects that are looked up rather than created.
ESI_FAKE_NAMESPACE = uuid.UUID('0b7c0f5e-6c3a-4d1e-9d55-3e2f1c9a7b10')


def attr(description, type_=None):
    """An attribute schema (the type only makes Heat log a warning on mismatch)."""
    if type_ is None:
        return attributes.Schema(description)
    return attributes.Schema(description, type=type_)


class FakeResource(resource.Resource):
    """A resource that accepts any properties and exists only in Heat's database."""

    # Filled per instance (see _accept_properties); the class-level schema stays empty so that
    # `openstack orchestration resource type show` lists no fixed properties.
    properties_schema = {}
    attributes_schema = {}

    # Properties whose change makes Heat replace the resource instead of updating it in place.
    replace_on_change = frozenset(['uuid'])

    # ---- permissive properties -------------------------------------------------------------
    def _accept_properties(self, snippet):
        """Give every key of a properties snippet an `Any` schema on this instance."""
        schema = self.__dict__.get('properties_schema')
        if schema is None:
            schema = self.properties_schema = {}
        keys = snippet.keys() if isinstance(snippet, dict) else ()
        for key in keys:
            if key not in schema:
                schema[key] = properties.Schema(
                    properties.Schema.ANY,
                    update_allowed=key not in self.replace_on_change)

    def reparse(self, client_resolve=True):
        self._accept_properties(self.t._properties)
        super(FakeResource, self).reparse(client_resolve)

    def regenerate_info_schema(self, definition):
        # Called by Heat on update before the new properties are parsed: accept the new keys.
        self._accept_properties(definition._properties)

    def frozen_definition(self):
        # On delete Heat re-reads the properties stored at the last create/update.
        self._accept_properties(self._stored_properties_data)
        return super(FakeResource, self).frozen_definition()

    def prop(self, key, default=None):
        """The resolved value of a property, `default` when absent or null."""
        if key not in self.properties:
            return default
        value = self.properties[key]
        return default if value is None else value

    # ---- lifecycle ---------------------------------------------------------------------------
    def _new_resource_id(self):
        given = self.prop('uuid')
        if isinstance(given, str) and given.strip():
            return given.strip()
        return str(uuid.uuid4())

    def handle_create(self):
        self.resource_id_set(self._new_resource_id())

    def handle_update(self, json_snippet, tmpl_diff, prop_diff):
        # In place: the attributes are re-derived from the new properties.
        pass

    def handle_delete(self):
        # Nothing exists outside Heat. (Returning None: Heat's default handle_delete would
        # call an OpenStack client.)
        return None

    # ---- attributes --------------------------------------------------------------------------
    def _project(self):
        """The project part of a Contrail fq_name: the Heat request's project."""
        ctx = self.stack.context
        return ctx.project_name or ctx.project_id or 'admin'

    def _attribute_values(self):
        """Attribute values derived from the properties; subclasses extend it."""
        return {'name': self.prop('name', self.physical_resource_name())}

    def _resolve_attribute(self, name):
        values = self._attribute_values()
        if name in values:
            return values[name]
        return self.prop(name)

    def _show_resource(self):
        # The "show" attribute every Heat resource has: properties plus derived attributes
        # (passwords masked).
        shown = {k: ('***' if 'password' in k else self.prop(k)) for k in self.properties}
        shown.update(self._attribute_values())
        shown['id'] = self.resource_id
        return shown
