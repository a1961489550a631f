"""Permissive replacements for Heat's service-backed custom constraints (``nova.flavor``, ...).

Why: template parameters may carry ``constraints: [custom_constraint: <name>]``; the corpus's
``vnf_instance`` template uses ``glance.image`` and ``nova.flavor``. Heat checks such a value by
asking the service (Glance, Nova, Neutron, ...), and the standalone test Heat has none, so
validation would fail and the stack would be rejected with 400.

Heat registers the constraints of its ``heat.constraints`` entry points first and then those
returned by every plugin module's ``constraint_mapping()`` (heat/engine/resources/__init__.py,
``_load_global_resources``), so a plugin's constraint of the same name wins. This module
replaces every stock constraint implemented in ``heat.engine.clients.*`` (the ones that look
something up in another service) by one that accepts any value. Local format checks
(``ip_addr``, ``cidr``/``net_cidr``, ``mac_addr``, ``iso_8601``, ``dns_name``, ...) are kept.
"""

from oslo_log import log as logging
from stevedore import extension

from heat.engine import constraints

LOG = logging.getLogger(__name__)


class AcceptAnything(constraints.BaseCustomConstraint):
    """Accepts every value (the service it would ask does not exist here)."""

    def validate(self, value, context, template=None):
        return True


def constraint_mapping():
    mgr = extension.ExtensionManager(namespace='heat.constraints', invoke_on_load=False)
    names = sorted(name for name in mgr.names()
                   if mgr[name].plugin.__module__.startswith('heat.engine.clients.'))
    LOG.info('heat-reconciler: accepting any value for the custom constraints %s',
             ', '.join(names))
    return {name: AcceptAnything for name in names}
