"""Stand-ins for the OpenContrail resource types of the corpus templates (``OS::Contrail::*``).

Why: the original deployment ran Juniper's contrail-heat plugins against a Contrail controller;
the standalone test Heat has neither. These fakes (see esi_base.FakeResource: any property
accepted, nothing created outside Heat) let the corpus templates be created for real, with ids
and attributes shaped like the ones the original run recorded (conformance
scenarios/*/heat_stacks/*.json):

* VirtualNetwork / VirtualMachineInterface ``fq_name`` is a colon-joined string
  ``default-domain:<project>:<name>`` (as contrail-heat returned it); PhysicalRouter,
  PhysicalInterface and ExistingResource ``fq_name`` are lists (as in the corpus).
* VMI ``virtual_networks`` is a list of network fq_names (lists), ``..._mac_addresses`` the list
  given, ``..._allowed_address_pairs`` a map ``{"allowed_address_pair": [...]}``.
* VnSubnet ``ipam`` is the IPAM's uuid (a stable uuid5 of the IPAM fq_name given), as Contrail
  returned a uuid there.
* ``<project>`` is the Heat request's project (``admin`` on the standalone Heat).
"""

import uuid

from heat.engine.plugins import esi_base as base  # loaded by Heat from this folder

attr = base.attr
FakeResource = base.FakeResource


def _as_list(value):
    if value is None or value == '':
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


class _ContrailResource(FakeResource):
    """Common attributes of the Contrail stand-ins."""

    attributes_schema = {
        'name': attr('Name of the object.'),
        'fq_name': attr('Fully qualified name of the object.'),
        'uuid': attr('UUID of the object (the resource id).'),
    }

    def _fq_name(self):
        return [base.DEFAULT_DOMAIN, self._project(), self._attribute_name()]

    def _attribute_name(self):
        return self.prop('name') or self.resource_id or self.physical_resource_name()

    def _attribute_values(self):
        return {
            'name': self._attribute_name(),
            'fq_name': self._fq_name(),
            'uuid': self.resource_id,
        }


class VirtualNetwork(_ContrailResource):
    attributes_schema = dict(_ContrailResource.attributes_schema, **{
        'route_targets': attr('Route targets of the network.'),
        'shared': attr('Whether the network is shared.'),
        'forwarding_mode': attr('Forwarding mode.'),
        'admin_state_up': attr('Administrative state.'),
    })

    def _attribute_values(self):
        values = super(VirtualNetwork, self)._attribute_values()
        values.update({
            'fq_name': ':'.join(self._fq_name()),
            'route_targets': _as_list(self.prop('route_targets')),
            'shared': self.prop('shared', False),
            'forwarding_mode': self.prop('forwarding_mode', 'l2_l3'),
            'admin_state_up': self.prop('admin_state_up', True),
        })
        return values


class VnSubnet(_ContrailResource):
    attributes_schema = dict(_ContrailResource.attributes_schema, **{
        'network_id': attr('Network the subnet belongs to.'),
        'ip_prefix': attr('CIDR of the subnet.'),
        'default_gateway': attr('Default gateway.'),
        'ipam': attr('UUID of the IPAM used.'),
        'enable_dhcp': attr('Whether DHCP is enabled.'),
        'allocation_pools': attr('Allocation pools.'),
        'dns_nameservers': attr('DNS name servers.'),
        'host_routes': attr('Host routes.'),
    })

    def _attribute_values(self):
        values = super(VnSubnet, self)._attribute_values()
        ipam = self.prop('ipam')
        values.update({
            'network_id': self.prop('network_id'),
            'ip_prefix': self.prop('ip_prefix'),
            'default_gateway': self.prop('default_gateway'),
            'ipam': (str(uuid.uuid5(base.ESI_FAKE_NAMESPACE, 'ipam:%s' % ipam))
                     if ipam else None),
            'enable_dhcp': self.prop('enable_dhcp', True),
            'allocation_pools': self.prop('allocation_pools', []),
            'dns_nameservers': _as_list(self.prop('dns_nameservers')),
            'host_routes': self.prop('host_routes', []),
        })
        return values


class VirtualMachineInterface(_ContrailResource):
    attributes_schema = dict(_ContrailResource.attributes_schema, **{
        'virtual_networks': attr('fq_names of the networks attached.'),
        'virtual_machine_interface_mac_addresses': attr('MAC addresses.'),
        'virtual_machine_interface_allowed_address_pairs': attr('Allowed address pairs.'),
        'virtual_machine': attr('The machine the interface belongs to.'),
        'device_owner': attr('Device owner.'),
        'admin_state_up': attr('Administrative state.'),
    })

    def _attribute_values(self):
        values = super(VirtualMachineInterface, self)._attribute_values()
        pairs = self.prop('virtual_machine_interface_allowed_address_pairs')
        if not isinstance(pairs, dict):
            pairs = {'allowed_address_pair': _as_list(pairs)}
        values.update({
            'fq_name': ':'.join(self._fq_name()),
            'virtual_networks': [[base.DEFAULT_DOMAIN, self._project(), net]
                                 for net in _as_list(self.prop('virtual_networks'))],
            'virtual_machine_interface_mac_addresses': _as_list(
                self.prop('virtual_machine_interface_mac_addresses')),
            'virtual_machine_interface_allowed_address_pairs': pairs,
            'virtual_machine': self.prop('virtual_machine'),
            'device_owner': self.prop('device_owner'),
            'admin_state_up': self.prop('admin_state_up', True),
        })
        return values


class InstanceIp(_ContrailResource):
    attributes_schema = dict(_ContrailResource.attributes_schema, **{
        'ip_address': attr('The IP address.'),
        'subnet_id': attr('Subnet of the address.'),
        'network_id': attr('Network of the address.'),
        'virtual_machine_interfaces': attr('Interfaces the address is bound to.'),
    })

    def _attribute_values(self):
        values = super(InstanceIp, self)._attribute_values()
        values.update({
            'ip_address': self.prop('ip_address'),
            'subnet_id': self.prop('subnet_id'),
            'network_id': self.prop('network_id'),
            'virtual_machine_interfaces': _as_list(self.prop('virtual_machine_interfaces')),
        })
        return values


class Subnet(_ContrailResource):
    """OS::Contrail::Subnet (the ``local_subnet`` template)."""

    attributes_schema = dict(_ContrailResource.attributes_schema, **{
        'ip_prefix': attr('CIDR of the subnet.'),
        'virtual_machine_interfaces': attr('Interfaces in the subnet.'),
    })

    def _attribute_values(self):
        values = super(Subnet, self)._attribute_values()
        values.update({
            'ip_prefix': self.prop('ip_prefix'),
            'virtual_machine_interfaces': _as_list(self.prop('virtual_machine_interfaces')),
        })
        return values


class PhysicalRouter(_ContrailResource):
    attributes_schema = dict(_ContrailResource.attributes_schema, **{
        'management_ip': attr('Management IP.'),
        'dataplane_ip': attr('Data-plane IP.'),
        'vendor_name': attr('Vendor name.'),
        'product_name': attr('Product name.'),
        'vnc_managed': attr('Whether Contrail manages the router.'),
        'virtual_routers': attr('Virtual routers (TOR agents, TSNs) of the router.'),
        'physical_interfaces': attr('Physical interfaces of the router.'),
        'logical_interfaces': attr('Logical interfaces of the router.'),
    })

    def _fq_name(self):
        return [base.GLOBAL_SYSTEM_CONFIG, self._attribute_name()]

    def _attribute_values(self):
        values = super(PhysicalRouter, self)._attribute_values()
        values.update({
            'management_ip': self.prop('management_ip'),
            'dataplane_ip': self.prop('dataplane_ip'),
            'vendor_name': self.prop('vendor_name'),
            'product_name': self.prop('product_name'),
            'vnc_managed': self.prop('vnc_managed'),
            'virtual_routers': [r for r in _as_list(self.prop('virtual_routers')) if r],
            # created empty; Contrail lists the interfaces created later under the router
            'physical_interfaces': [],
            'logical_interfaces': [],
        })
        return values


class PhysicalInterface(_ContrailResource):
    attributes_schema = dict(_ContrailResource.attributes_schema, **{
        'physical_router': attr('The router the interface belongs to.'),
        'logical_interfaces': attr('Logical interfaces of the interface.'),
    })

    def _fq_name(self):
        return [base.GLOBAL_SYSTEM_CONFIG, self.prop('physical_router', ''),
                self._attribute_name()]

    def _attribute_values(self):
        values = super(PhysicalInterface, self)._attribute_values()
        values.update({
            'physical_router': self.prop('physical_router'),
            'logical_interfaces': [],
        })
        return values


class LogicalInterface(_ContrailResource):
    attributes_schema = dict(_ContrailResource.attributes_schema, **{
        'physical_interface': attr('The physical interface it is created on.'),
        'type': attr('L2 or L3.'),
        'vlan': attr('VLAN id.'),
        'virtual_machine_interfaces': attr('Interfaces attached.'),
    })

    def _fq_name(self):
        return [base.GLOBAL_SYSTEM_CONFIG, self.prop('physical_interface', ''),
                self._attribute_name()]

    def _attribute_values(self):
        values = super(LogicalInterface, self)._attribute_values()
        values.update({
            'physical_interface': self.prop('physical_interface'),
            'type': self.prop('type'),
            'vlan': self.prop('vlan'),
            'virtual_machine_interfaces': _as_list(self.prop('virtual_machine_interfaces')),
        })
        return values


class ExistingResource(_ContrailResource):
    """Refers to an object that already exists in Contrail (a device, a port).

    The id is a uuid5 of (resource_type, fq_name), so the same object always gets the same id,
    as a lookup would give; ``name`` is the last fq_name element.
    """

    replace_on_change = frozenset(['uuid', 'fq_name', 'resource_type'])
    attributes_schema = dict(_ContrailResource.attributes_schema, **{
        'resource_type': attr('Contrail type of the object.'),
    })

    def _fq_name(self):
        return [str(p) for p in _as_list(self.prop('fq_name'))]

    def _attribute_name(self):
        fq_name = self._fq_name()
        return fq_name[-1] if fq_name else self.resource_id

    def _new_resource_id(self):
        if self.prop('uuid'):
            return super(ExistingResource, self)._new_resource_id()
        key = '%s:%s' % (self.prop('resource_type', ''), ':'.join(self._fq_name()))
        return str(uuid.uuid5(base.ESI_FAKE_NAMESPACE, key))

    def _attribute_values(self):
        values = super(ExistingResource, self)._attribute_values()
        values['resource_type'] = self.prop('resource_type')
        return values


class NetconfNamedConfigs(_ContrailResource):
    """Pushes NETCONF configuration snippets to a device (routers, MX, QFX).

    The fake keeps the configs (see the ``show`` attribute) and contacts no device.
    """

    attributes_schema = dict(_ContrailResource.attributes_schema, **{
        'device_ip': attr('The device configured.'),
        'configs': attr('The configuration snippets pushed.'),
    })

    def _attribute_values(self):
        values = super(NetconfNamedConfigs, self)._attribute_values()
        values.update({
            'device_ip': self.prop('device_ip'),
            'configs': self.prop('configs', []),
        })
        return values


def resource_mapping():
    return {
        'OS::Contrail::VirtualNetwork': VirtualNetwork,
        'OS::Contrail::VnSubnet': VnSubnet,
        'OS::Contrail::VirtualMachineInterface': VirtualMachineInterface,
        'OS::Contrail::InstanceIp': InstanceIp,
        'OS::Contrail::Subnet': Subnet,
        'OS::Contrail::PhysicalRouter': PhysicalRouter,
        'OS::Contrail::PhysicalInterface': PhysicalInterface,
        'OS::Contrail::LogicalInterface': LogicalInterface,
        'OS::Contrail::ExistingResource': ExistingResource,
        'OS::Contrail::NetconfNamedConfigs': NetconfNamedConfigs,
    }
