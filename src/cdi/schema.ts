/**
 * Our JSON schema (draft-07) for CDI spec files, written from the field list of FACTS §3.1 (the Go tags of
 * specs-go/config.go), not copied from upstream. Like the Go loader and unlike upstream's schema it rejects
 * unknown fields everywhere. What a schema cannot say (name syntax, version-gated fields, env syntax, hook
 * names) is checked in validate.ts.
 */

const stringList = { type: 'array', items: { type: 'string' } } as const;
const uint32 = { type: 'integer', minimum: 0, maximum: 4294967295 } as const;
const int64 = { type: 'integer' } as const;
const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;

export const CDI_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://nvidia-runtime.local/schemas/cdi-spec.json',
  title: 'CDI spec',
  type: 'object',
  required: ['cdiVersion', 'kind', 'devices'],
  additionalProperties: false,
  properties: {
    cdiVersion: { type: 'string', minLength: 1 },
    kind: { type: 'string', minLength: 1 },
    annotations: stringMap,
    devices: { type: 'array', minItems: 1, items: { $ref: '#/definitions/device' } },
    containerEdits: { $ref: '#/definitions/containerEdits' },
  },
  definitions: {
    device: {
      type: 'object',
      required: ['name', 'containerEdits'],
      additionalProperties: false,
      properties: {
        name: { type: 'string', minLength: 1 },
        annotations: stringMap,
        containerEdits: { $ref: '#/definitions/containerEdits' },
      },
    },
    containerEdits: {
      type: 'object',
      additionalProperties: false,
      properties: {
        env: stringList,
        deviceNodes: { type: 'array', items: { $ref: '#/definitions/deviceNode' } },
        hooks: { type: 'array', items: { $ref: '#/definitions/hook' } },
        mounts: { type: 'array', items: { $ref: '#/definitions/mount' } },
        intelRdt: { $ref: '#/definitions/intelRdt' },
        additionalGids: { type: 'array', items: uint32 },
        netDevices: { type: 'array', items: { $ref: '#/definitions/netDevice' } },
      },
    },
    deviceNode: {
      type: 'object',
      required: ['path'],
      additionalProperties: false,
      properties: {
        path: { type: 'string', minLength: 1 },
        hostPath: { type: 'string' },
        type: { type: 'string', enum: ['', 'b', 'c', 'u', 'p'] },
        major: int64,
        minor: int64,
        fileMode: uint32,
        permissions: { type: 'string' },
        uid: uint32,
        gid: uint32,
      },
    },
    mount: {
      type: 'object',
      required: ['hostPath', 'containerPath'],
      additionalProperties: false,
      properties: {
        hostPath: { type: 'string', minLength: 1 },
        containerPath: { type: 'string', minLength: 1 },
        options: stringList,
        type: { type: 'string' },
      },
    },
    hook: {
      type: 'object',
      required: ['hookName', 'path'],
      additionalProperties: false,
      properties: {
        hookName: { type: 'string', minLength: 1 },
        path: { type: 'string', minLength: 1 },
        args: stringList,
        env: stringList,
        timeout: { type: 'integer', exclusiveMinimum: 0 },
      },
    },
    intelRdt: {
      type: 'object',
      additionalProperties: false,
      properties: {
        closID: { type: 'string' },
        l3CacheSchema: { type: 'string' },
        memBwSchema: { type: 'string' },
        schemata: stringList,
        enableMonitoring: { type: 'boolean' },
        enableCMT: { type: 'boolean' },
        enableMBM: { type: 'boolean' },
      },
    },
    netDevice: {
      type: 'object',
      required: ['hostInterfaceName', 'name'],
      additionalProperties: false,
      properties: {
        hostInterfaceName: { type: 'string', minLength: 1 },
        name: { type: 'string', minLength: 1 },
      },
    },
  },
} as const;
