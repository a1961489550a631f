//! A local net-snmp `snmpd` on loopback, for tests, the demo and the benchmark.
