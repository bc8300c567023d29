{
  # Every native artifact lands directly in build/Release/ (native/README.md lists the exact paths).
  # Shared libraries get "product_dir" so gyp does not put them under lib.target/, and "product_prefix"
  # because node-gyp's addon.gypi clears the usual "lib" prefix. gyp's make generator
  # appends -Wl,-soname=<file name> after ldflags, so our -soname goes into "libraries", which come last.
  "target_defaults": {
    "cflags": ["-Wall", "-Wextra", "-O2"],
    "cflags_c": ["-std=gnu99"],
  },
  "targets": [
    {
      "target_name": "nvidia_runtime",
      "sources": ["native/addon/addon.cc", "native/addon/execve.cc", "native/nvml/enumerate.c"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "libraries": ["-ldl"],
    },
    {
      "target_name": "nvml_probe",
      "type": "executable",
      "product_name": "nvml-probe",
      "sources": ["native/probe/probe.c", "native/nvml/enumerate.c"],
      "libraries": ["-ldl"],
    },
    {
      "target_name": "nvml_mock",
      "type": "shared_library",
      "product_name": "nvidia-ml-mock",
      "product_prefix": "lib",
      "product_dir": "<(PRODUCT_DIR)",
      "sources": ["native/mock/fake_nvml.c"],
      "cflags": ["-fvisibility=hidden"],
      "libraries": ["-ldl", "-Wl,-soname,libnvidia-ml.so.1"],
    },
    {
      "target_name": "nvml_mock_minimal",
      "type": "shared_library",
      "product_name": "nvidia-ml-mock-minimal",
      "product_prefix": "lib",
      "product_dir": "<(PRODUCT_DIR)",
      "sources": ["native/mock/fake_nvml.c"],
      "defines": ["NVMOCK_MINIMAL"],
      "cflags": ["-fvisibility=hidden"],
      "libraries": ["-ldl", "-Wl,-soname,libnvidia-ml.so.1"],
    },
    {
      "target_name": "driver_stub",
      "type": "shared_library",
      "product_name": "nvidia-stub",
      "product_prefix": "lib",
      "product_dir": "<(PRODUCT_DIR)",
      "sources": ["native/mock/stub.c"],
      "cflags": ["-fvisibility=hidden"],
      # "NVMOCK_SONAME_" + 50 "X" = 64 bytes: mock-driver overwrites it in each copy's .dynstr.
      "libraries": ["-Wl,-soname,NVMOCK_SONAME_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"],
    },
    {
      # The same stub as a 32-bit (i386) object, for the compat32 capability of the mock. -nostdlib: a 32-bit
      # libc is not needed (and not installed) to link a library with no dependencies.
      "target_name": "driver_stub32",
      "type": "shared_library",
      "product_name": "nvidia-stub32",
      "product_prefix": "lib",
      "product_dir": "<(PRODUCT_DIR)",
      "sources": ["native/mock/stub.c"],
      "cflags!": ["-m64"],
      "ldflags!": ["-m64"],
      "cflags": ["-m32", "-fvisibility=hidden"],
      "ldflags": ["-m32", "-nostdlib"],
      "libraries": ["-Wl,-soname,NVMOCK_SONAME_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"],
    },
    {
      # The stub with a SONAME placeholder and a DT_NEEDED placeholder "NVMOCK_NEEDED_" + 50 "X" (64 bytes):
      # mock-driver patches both, making the non-glvnd GL libraries (libGL.so.<ver> needs
      # libnvidia-glcore.so.<ver>, libEGL/libGLES* need libnvidia-eglcore.so.<ver>), which libnvidia-container
      # accepts only with that dependency. The DT_NEEDED comes from linking against a throw-away library whose
      # soname is the placeholder, built by the action (not a gyp dependency: that would add an $ORIGIN rpath).
      # --no-as-needed only around it: the stub uses none of its symbols, and libc & co. must not become needed.
      "target_name": "driver_stub_needed",
      "type": "shared_library",
      "product_name": "nvidia-stub-needed",
      "product_prefix": "lib",
      "product_dir": "<(PRODUCT_DIR)",
      "sources": ["native/mock/stub.c"],
      "cflags": ["-fvisibility=hidden"],
      "actions": [
        {
          "action_name": "needed_placeholder",
          "inputs": ["native/mock/stub.c"],
          "outputs": ["<(INTERMEDIATE_DIR)/libnvmock-needed-placeholder.so"],
          "action": [
            "cc", "-shared", "-fPIC", "-nostdlib", "-o", "<(INTERMEDIATE_DIR)/libnvmock-needed-placeholder.so",
            "-Wl,-soname,NVMOCK_NEEDED_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "native/mock/stub.c",
          ],
        },
      ],
      "libraries": [
        "-Wl,--push-state,--no-as-needed,<(INTERMEDIATE_DIR)/libnvmock-needed-placeholder.so,--pop-state",
        "-Wl,-soname,NVMOCK_SONAME_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
      ],
    },
    {
      "target_name": "nvidia_smi_mock",
      "type": "executable",
      "product_name": "nvidia-smi-mock",
      "sources": ["native/mock/nvidia_smi.c", "native/nvml/enumerate.c"],
      "libraries": ["-ldl"],
    },
    {
      # The runtime's entry point: pass-through and non-GPU creates exec runc directly (native/launcher/README.md).
      "target_name": "nvidia_runtime_launcher",
      "type": "executable",
      "product_name": "nvidia-runtime",
      "sources": ["native/launcher/launcher.c", "native/launcher/serve_client.c"],
      # NODE_EXECUTABLE: the node this build ran under, the launcher's first choice; after it the fixed fallbacks of
      # src/launcher-contract.json (nodeFallbacks: /usr/bin/node, /usr/local/bin/node), each used only when it passes
      # the trust rule, so moving or upgrading Node does not break GPU creates (native/launcher/launcher.c find_node).
      "defines": ["NODE_EXECUTABLE=\"<!(node -p process.execPath)\""],
    },
    {
      # The createContainer hook; static so no dynamic loader runs in a process that runs as host root.
      "target_name": "nvidia_runtime_hook",
      "type": "executable",
      "product_name": "nvidia-runtime-hook",
      # Also nvidia-cdi-hook (the toolkit's CDI hooks) when run under that name: scripts/link-bins.mjs links it.
      "sources": ["native/hook/hook.c", "native/hook/cdi_hook.c", "native/hook/apply.c", "native/hook/inroot.c", "native/hook/json.c", "native/hook/ldcache_fast.c"],
      "ldflags": ["-static"],
    },
  ],
}
