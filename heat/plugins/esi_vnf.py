"""Stand-ins for ESI's VNF resource types of the corpus templates (``ESI::VNF::*``).

Why: in the original deployment ``ESI::VNF::Instance`` booted a Nova server for a virtual
appliance and the ``*Config`` / ``SyslogServer`` types configured that appliance (a Citrix
NetScaler load balancer, a Vyatta firewall) through its management IP. The standalone test Heat
has no Nova and no appliances, so these fakes (esi_base.FakeResource: any property accepted,
nothing contacted) only record the request:

* ``ESI::VNF::Instance``: ``get_resource`` is a new uuid4, standing for the Nova server id (the
  ``vnf_instance`` template outputs it as ``server_id``, which ``load_balancer_conf`` and
  ``firewall_config`` then receive as a parameter).
* the configuration types: ``get_resource`` is a uuid4; attributes echo the properties.
"""

from heat.engine.plugins import esi_base as base  # loaded by Heat from this folder

attr = base.attr


class Instance(base.FakeResource):
    """A VNF appliance's server (a Nova server in the original)."""

    attributes_schema = {
        'name': attr('Server name.'),
        'networks': attr('Networks (ports) the server is attached to.'),
        'flavor': attr('Flavor.'),
        'image': attr('Image.'),
        'availability_zone': attr('Availability zone.'),
    }

    def _attribute_values(self):
        return {
            'name': self.prop('name') or self.physical_resource_name(),
            'networks': self.prop('networks', []),
            'flavor': self.prop('flavor'),
            'image': self.prop('image'),
            'availability_zone': self.prop('availability_zone'),
        }


class _ApplianceConfig(base.FakeResource):
    """Configuration pushed to an appliance through its management IP."""

    attributes_schema = {
        'name': attr('Name.'),
        'management_ip': attr('Management IP of the appliance configured.'),
    }

    def _attribute_values(self):
        return {
            'name': self.prop('name') or self.physical_resource_name(),
            'management_ip': self.prop('management_ip'),
        }


class NetscalerConfig(_ApplianceConfig):
    pass


class NetscalerSyslogServer(_ApplianceConfig):
    pass


class VyattaConfig(_ApplianceConfig):
    pass


def resource_mapping():
    return {
        'ESI::VNF::Instance': Instance,
        'ESI::VNF::NetscalerConfig': NetscalerConfig,
        'ESI::VNF::NetscalerSyslogServer': NetscalerSyslogServer,
        'ESI::VNF::VyattaConfig': VyattaConfig,
    }
