//! Local services for tests, benchmarks and the demo: real programs started on loopback.

pub mod kube_apiserver;

pub use kube_apiserver::LocalKubeApiserver;
