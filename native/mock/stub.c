/*
 * Stub driver library. Linked with the SONAME placeholder "NVMOCK_SONAME_" + 50 'X' (64 bytes) that
 * `nvidia-ctk mock-driver` overwrites in each copy's .dynstr with the real soname (libcuda.so.1, ...), NUL-padded.
 * It exports one harmless symbol and nothing NVML-like.
 */
__attribute__((visibility("default"))) int nvmock_stub(void) { return 0; }
