/*
 * Stub driver library. Linked with the SONAME placeholder "NVMOCK_SONAME_" + 50 'X' (64 bytes) that
 * `nvidia-ctk mock-driver` overwrites in each copy's .dynstr with the real soname (libcuda.so.1, ...), NUL-padded.
 * It exports one harmless symbol and nothing NVML-like.
 * binding.gyp builds it four ways: libnvidia-stub.so (x86-64), libnvidia-stub32.so (i386), and
 * libnvidia-stub-needed.so, which also has the DT_NEEDED placeholder "NVMOCK_NEEDED_" + 50 'X' (from linking
 * against a throw-away library with that soname, built from this file too) for the non-glvnd GL libraries.
 */
__attribute__((visibility("default"))) int nvmock_stub(void) { return 0; }
