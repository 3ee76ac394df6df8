//! Network namespaces for `oxisec demo` and the interop tests (to be written).
