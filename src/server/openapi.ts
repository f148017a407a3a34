/**
 * The daemon's API, described as OpenAPI 3.1 (its schemas are JSON Schema
 * 2020-12). Served at /api/openapi.json; the API tests validate every
 * response they get against it, so the document and the server cannot drift.
 */

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object, description: string) => ({ description, content: { 'application/json': { schema } } });
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [String(c), { $ref: `#/components/responses/E${c}` }]));
const nameParam = { name: 'name', in: 'path', required: true, description: 'the VM name', schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' } };

const tagParam = { name: 'tag', in: 'path', required: true, description: 'the snapshot name (or id)', schema: { type: 'string' } };

const action = (summary: string, extra: number[] = []) => ({
  post: {
    summary,
    parameters: [nameParam],
    responses: { '200': json(ref('Vm'), 'the VM after the request was taken'), ...errors(400, 401, 404, 409, ...extra) },
  },
});

export const OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'tsvm daemon',
    version: '1',
    description:
      'Manage the VMs of one directory. Every request needs the token printed by `tsvm serve`: an `Authorization: Bearer TOKEN` header, the `tsvm_token` cookie the page sets, or `?token=TOKEN`. WebSockets: /api/vms/{name}/console (binary: serial bytes both ways), /api/vms/{name}/screen (JSON screen updates out, key input in), /api/events (JSON events out).',
  },
  components: {
    securitySchemes: { token: { type: 'http', scheme: 'bearer' } },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        additionalProperties: false,
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            additionalProperties: false,
            properties: { code: { type: 'string' }, message: { type: 'string' } },
          },
        },
      },
      VmState: { type: 'string', enum: ['stopped', 'starting', 'running', 'paused', 'stopping', 'crashed'] },
      RestartPolicy: { type: 'string', enum: ['never', 'on-crash'] },
      Vm: {
        type: 'object',
        required: ['name', 'state', 'reason', 'memoryBytes', 'autostart', 'restart', 'restarts', 'startedAt', 'suspended', 'cpuLimit', 'networks', 'isolation', 'pid', 'rssLimitMiB', 'rssLimitEnforced'],
        additionalProperties: false,
        properties: {
          name: { type: 'string' },
          state: ref('VmState'),
          reason: { type: ['string', 'null'], description: 'the last stop cause or the crash reason' },
          memoryBytes: { type: 'integer', minimum: 0 },
          autostart: { type: 'boolean' },
          restart: ref('RestartPolicy'),
          restarts: { type: 'integer', minimum: 0 },
          startedAt: { type: ['string', 'null'], format: 'date-time' },
          suspended: { type: 'boolean', description: 'a stopped VM whose next start resumes a saved state' },
          cpuLimit: { type: ['integer', 'null'], minimum: 1, maximum: 100, description: 'cap on host CPU share, percent of one core (100 or null: none)' },
          networks: { type: 'array', items: { type: 'string' }, description: 'the private networks its NICs are on (empty: user-mode networking, or no NIC)' },
          isolation: { type: 'string', enum: ['process', 'thread'], description: "where its runs go: a child process of its own, or a worker thread of the daemon (tsvm serve --isolation)" },
          pid: { type: ['integer', 'null'], minimum: 1, description: 'the pid of the process running it now (isolation process), or null' },
          rssLimitMiB: { type: 'integer', minimum: 1, description: "the cap on the VM process's resident set in MiB: its rssLimitMiB setting, or by default guest RAM + heapLimitMb + 384. A process that stays above it for 3 s is killed and the VM shows crashed ('over its memory limit: RSS N MiB > M MiB'), then follows its restart policy" },
          rssLimitEnforced: { type: 'boolean', description: 'whether rssLimitMiB is enforced: true under process isolation; false under thread isolation, where every VM shares the daemon\'s process and the limit cannot apply to one thread' },
        },
      },
      Network: {
        type: 'object',
        required: ['name', 'dhcp', 'vms', 'served'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' },
          dhcp: { type: ['string', 'null'], description: 'its DHCP server, `SUBNET/PREFIX[,router=ADDR][,dns=ADDR]`, or null for none' },
          vms: { type: 'array', items: { type: 'string' }, description: 'the VMs whose NICs are on it' },
          served: { type: 'boolean', description: "the daemon serves its switch now (from the first start of one of its VMs)" },
        },
      },
      NetworkList: { type: 'object', required: ['networks'], additionalProperties: false, properties: { networks: { type: 'array', items: ref('Network') } } },
      NewNetwork: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' },
          dhcp: { type: ['string', 'null'], description: 'a DHCP server on the network for this subnet, e.g. "10.0.3.0/24" or "10.0.3.0/24,router=10.0.3.1,dns=10.0.3.1"' },
        },
      },
      Snapshot: {
        type: 'object',
        required: ['id', 'name', 'description', 'parent', 'createdAt', 'hasState', 'guestSeconds', 'screen'],
        additionalProperties: false,
        properties: {
          id: { type: 'string' },
          name: { type: 'string' },
          description: { type: 'string' },
          parent: { type: ['string', 'null'], description: 'the id of the snapshot this one descends from' },
          createdAt: { type: 'string', format: 'date-time' },
          hasState: { type: 'boolean', description: 'the whole machine was saved (a running VM), not only its disks' },
          guestSeconds: { type: 'number' },
          screen: { type: ['array', 'null'], items: { type: 'string' }, description: 'the text screen at the save, as a thumbnail' },
          sharedWith: {
            type: 'array',
            description: 'linked clones whose disks back onto this snapshot (name, folder relative to this VM\'s folder): the snapshot cannot be deleted while one exists',
            items: { type: 'object', required: ['name', 'path'], additionalProperties: false, properties: { name: { type: 'string' }, path: { type: 'string' } } },
          },
        },
      },
      SnapshotTree: {
        type: 'object',
        required: ['version', 'current', 'snapshots'],
        additionalProperties: false,
        properties: { version: { type: 'integer' }, current: { type: ['string', 'null'], description: 'the id the present state descends from' }, snapshots: { type: 'array', items: ref('Snapshot') } },
      },
      NewSnapshot: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: { name: { type: 'string', pattern: '^[^\\s/]{1,64}$' }, description: { type: 'string', maxLength: 1000 } },
      },
      VmList: { type: 'object', required: ['vms'], additionalProperties: false, properties: { vms: { type: 'array', items: ref('Vm') } } },
      CreateVm: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: {
          name: { type: 'string' },
          guest: {
            type: 'string',
            enum: ['default', 'firmware'],
            description: "'default' (the default): the default Linux guest as `tsvm create NAME` makes it, with an empty qcow2 data disk on virtio-blk (/dev/vda, mounted on /data) and a virtio-net NIC on the user-mode network; 'firmware': SeaBIOS with no disk. Not with machine.",
          },
          memoryMiB: { type: 'integer', minimum: 1, maximum: 3072 },
          diskMiB: { type: 'integer', minimum: 1, maximum: 1048576, description: "the default guest's data disk, MiB (default 1024; sparse)" },
          network: { type: ['string', 'null'], pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$', description: "the default guest's NIC on this private network (the daemon's switch for it; networks.json may give it DHCP) instead of the user-mode network" },
          machine: { type: 'object', description: 'a full machine spec (src/vmm/spec.ts) instead of guest, memoryMiB, diskMiB and network' },
          autostart: { type: 'boolean' },
          restart: ref('RestartPolicy'),
          heapLimitMb: { type: 'integer', minimum: 16, maximum: 4096 },
          cpuLimit: { type: ['integer', 'null'], minimum: 1, maximum: 100, description: 'cap on host CPU share, percent of one core (100 or null: none)' },
          rssLimitMiB: { type: ['integer', 'null'], minimum: 32, maximum: 1048576, description: "cap on the VM process's resident set, MiB (null: the default, guest RAM + heapLimitMb + 384); enforced under process isolation only" },
        },
      },
      Settings: {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        properties: { autostart: { type: 'boolean' }, restart: ref('RestartPolicy'), heapLimitMb: { type: 'integer', minimum: 16, maximum: 4096 }, cpuLimit: { type: ['integer', 'null'], minimum: 1, maximum: 100, description: 'cap on host CPU share, percent of one core (100 or null: none)' }, rssLimitMiB: { type: ['integer', 'null'], minimum: 32, maximum: 1048576, description: "cap on the VM process's resident set, MiB (null: the default, guest RAM + heapLimitMb + 384); enforced under process isolation only" } },
      },
      Stats: {
        type: 'object',
        required: ['name', 'state', 'sampleAgeMs', 'guestSeconds', 'guestInstructionsPerSec', 'hostCpuPercent', 'hostCpuSeconds', 'processRssBytes', 'vmMemoryBytes', 'cpuLimit', 'disks', 'nics'],
        additionalProperties: false,
        properties: {
          name: { type: 'string' },
          state: ref('VmState'),
          sampleAgeMs: {
            type: ['integer', 'null'],
            minimum: 0,
            description:
              "0 when the VM's process answered this request; otherwise the age of its last answer, given because it was too busy (or stopped) to answer within a second. null when the figures are no sample of this run, and zeros: the VM does not run, or its process has not answered once yet within that second (it is starting, or busy or stopped); state is the VM's state all the same. A stats request never waits longer than a second for the VM",
          },
          guestSeconds: { type: 'number', minimum: 0 },
          guestInstructionsPerSec: { type: 'integer', minimum: 0 },
          hostCpuPercent: { type: 'number', minimum: 0, description: 'percent of one host core used lately: the whole VM process (isolation process), or its thread busy' },
          hostCpuSeconds: { type: 'number', minimum: 0, description: "host CPU time of this run: its process's user + system time, or its thread's busy time" },
          processRssBytes: { type: 'integer', minimum: 0, description: "resident set of the process the VM runs in: its own (isolation process), or the daemon's, shared by all thread VMs; 0 while it does not run" },
          vmMemoryBytes: { type: 'integer', minimum: 0 },
          cpuLimit: { type: ['integer', 'null'], minimum: 1, maximum: 99, description: 'the CPU cap in force (percent of one core), null for none' },
          disks: { type: 'array', items: ref('DiskStats'), description: 'per drive, since the run started' },
          nics: { type: 'array', items: ref('NicStats'), description: 'per NIC, since the run started' },
        },
      },
      DiskStats: {
        type: 'object',
        required: ['name', 'readBytes', 'readOps', 'writtenBytes', 'writeOps', 'flushOps'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', description: 'hda, hdb, cdrom, virtio-blk0, ...' },
          readBytes: { type: 'integer', minimum: 0 },
          readOps: { type: 'integer', minimum: 0 },
          writtenBytes: { type: 'integer', minimum: 0 },
          writeOps: { type: 'integer', minimum: 0 },
          flushOps: { type: 'integer', minimum: 0 },
        },
      },
      NicStats: {
        type: 'object',
        required: ['name', 'rxBytes', 'rxFrames', 'txBytes', 'txFrames'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', description: 'nic0, nic1, ... in the machine\'s order' },
          rxBytes: { type: 'integer', minimum: 0, description: 'received by the guest' },
          rxFrames: { type: 'integer', minimum: 0 },
          txBytes: { type: 'integer', minimum: 0, description: 'sent by the guest' },
          txFrames: { type: 'integer', minimum: 0 },
        },
      },
      Daemon: {
        type: 'object',
        required: ['dir', 'pid', 'version', 'eventLoopDelay'],
        additionalProperties: false,
        properties: {
          dir: { type: 'string' },
          pid: { type: 'integer' },
          version: { type: 'string' },
          eventLoopDelay: {
            type: 'object',
            description:
              "how late the daemon's event loop runs what is due (perf_hooks.monitorEventLoopDelay): a timer every resolutionMs, each firing's lateness past its due time in ms, so 0 is on time. Every API answer, console byte and VM message waits on this loop. Over the last whole window (about 5 s) and since the daemon started",
            required: ['resolutionMs', 'window', 'sinceStart'],
            additionalProperties: false,
            properties: {
              resolutionMs: { type: 'integer', minimum: 1 },
              window: {
                allOf: [ref('DelayFigures')],
                type: 'object',
                required: ['seconds', 'endedAt'],
                properties: { seconds: { type: 'number', minimum: 0, description: 'its length (0 before the first window has ended)' }, endedAt: { type: ['string', 'null'], format: 'date-time', description: 'when it ended; null before the first window has' } },
                unevaluatedProperties: false,
              },
              sinceStart: {
                allOf: [ref('DelayFigures')],
                type: 'object',
                required: ['seconds'],
                properties: { seconds: { type: 'number', minimum: 0, description: 'since the daemon started' } },
                unevaluatedProperties: false,
              },
            },
          },
        },
      },
      DelayFigures: {
        type: 'object',
        required: ['samples', 'p50Ms', 'p99Ms', 'maxMs', 'meanMs'],
        properties: {
          samples: { type: 'integer', minimum: 0, description: 'timer firings measured' },
          p50Ms: { type: ['number', 'null'], minimum: 0, description: 'median lateness, ms (null without samples)' },
          p99Ms: { type: ['number', 'null'], minimum: 0 },
          maxMs: { type: ['number', 'null'], minimum: 0 },
          meanMs: { type: ['number', 'null'], minimum: 0 },
        },
      },
    },
    responses: {
      E400: json(ref('Error'), 'malformed request: bad JSON, a field of the wrong type, a name that is not a VM name'),
      E401: json(ref('Error'), 'no token or a wrong token'),
      E404: json(ref('Error'), 'no such VM or path'),
      E405: json(ref('Error'), 'the path does not take this method (the Allow header lists those it takes)'),
      E409: json(ref('Error'), "the VM's state does not allow the request"),
      E411: json(ref('Error'), 'an upload without a Content-Length'),
      E413: json(ref('Error'), 'the body is larger than the daemon accepts'),
      E415: json(ref('Error'), 'the body is not application/json'),
    },
  },
  security: [{ token: [] }],
  paths: {
    '/api/openapi.json': { get: { summary: 'this document', responses: { '200': json({ type: 'object', required: ['openapi', 'paths'] }, 'the OpenAPI 3.1 document'), ...errors(401) } } },
    '/api/daemon': { get: { summary: "the daemon: its directory, pid, version, and its event loop's delay", responses: { '200': json(ref('Daemon'), 'the daemon'), ...errors(401) } } },
    '/api/vms': {
      get: { summary: 'list the VMs', responses: { '200': json(ref('VmList'), 'the VMs'), ...errors(401) } },
      post: {
        summary: 'create a VM',
        requestBody: { required: true, content: { 'application/json': { schema: ref('CreateVm') } } },
        responses: { '201': json(ref('Vm'), 'the new VM'), ...errors(400, 401, 409, 413, 415) },
      },
    },
    '/api/networks': {
      get: { summary: 'the private networks: those networks.json declares and those VMs name', responses: { '200': json(ref('NetworkList'), 'the networks'), ...errors(401, 409) } },
      post: {
        summary: 'add a private network to networks.json (a VM created with `network` joins it)',
        requestBody: { required: true, content: { 'application/json': { schema: ref('NewNetwork') } } },
        responses: { '201': json(ref('Network'), 'the new network'), ...errors(400, 401, 409, 413, 415) },
      },
    },
    '/api/networks/{network}': {
      delete: {
        summary: 'remove a network no VM uses (409 while one does); the daemon stops its switch',
        parameters: [{ name: 'network', in: 'path', required: true, description: 'the network name', schema: { type: 'string' } }],
        responses: { '204': { description: 'deleted' }, ...errors(400, 401, 404, 409) },
      },
    },
    '/api/vms/{name}': {
      get: { summary: 'one VM', parameters: [nameParam], responses: { '200': json(ref('Vm'), 'the VM'), ...errors(400, 401, 404) } },
      patch: {
        summary: 'change autostart, the restart policy, the heap limit (next start) or the CPU cap (at once)',
        parameters: [nameParam],
        requestBody: { required: true, content: { 'application/json': { schema: ref('Settings') } } },
        responses: { '200': json(ref('Vm'), 'the VM'), ...errors(400, 401, 404, 409, 413, 415) },
      },
      delete: {
        summary: 'delete a stopped VM and its folder; 409 while it has linked clones',
        parameters: [nameParam],
        responses: { '204': { description: 'deleted' }, ...errors(400, 401, 404, 409) },
      },
    },
    '/api/vms/{name}/iso': {
      post: {
        summary: 'create VM {name} from an uploaded ISO image: it boots the CD (then the disk) and gets an empty qcow2 disk to install to',
        description: 'The body is the image itself, streamed to disk as it arrives (Content-Length required; at most `tsvm serve --max-upload-mib`); it is checked for an ISO 9660 volume descriptor and kept in the VM folder. The event stream reports `upload` and then `create` progress.',
        parameters: [
          nameParam,
          { name: 'memoryMiB', in: 'query', required: false, schema: { type: 'integer', minimum: 16, maximum: 3072, default: 128 } },
          { name: 'diskMiB', in: 'query', required: false, description: 'size of the empty disk; 0 for none', schema: { type: 'integer', minimum: 0, maximum: 1048576, default: 1024 } },
        ],
        requestBody: { required: true, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } }, 'application/x-iso9660-image': { schema: { type: 'string', format: 'binary' } } } },
        responses: { '201': json(ref('Vm'), 'the new VM'), ...errors(400, 401, 409, 411, 413, 415) },
      },
    },
    '/api/vms/{name}/start': {
      post: {
        ...action('start the VM in its own process (or worker thread); it resumes a suspended state unless forceBoot').post,
        requestBody: {
          required: false,
          content: { 'application/json': { schema: { type: 'object', additionalProperties: false, properties: { forceBoot: { type: 'boolean', description: 'boot afresh from the disks, discarding the suspended state (tsvm start --force-boot); snapshots are kept' } } } } },
        },
      },
    },
    '/api/vms/{name}/stop': action('hard stop: end the run now (QEMU quit)'),
    '/api/vms/{name}/powerdown': action('press the ACPI power button; the guest powers off in its own time'),
    '/api/vms/{name}/pause': action('pause the VM (guest time stands still)'),
    '/api/vms/{name}/resume': action('resume a paused VM'),
    '/api/vms/{name}/reset': action('reset the machine (a hardware reset)'),
    '/api/vms/{name}/snapshots': {
      get: { summary: 'the snapshot tree', parameters: [nameParam], responses: { '200': json(ref('SnapshotTree'), 'the tree and the current position'), ...errors(400, 401, 404) } },
      post: {
        summary: 'save a snapshot: the whole machine of a running VM, the disks (and suspended state) of a stopped one',
        parameters: [nameParam],
        requestBody: { required: true, content: { 'application/json': { schema: ref('NewSnapshot') } } },
        responses: { '201': json(ref('Snapshot'), 'the new snapshot'), ...errors(400, 401, 404, 409, 413, 415) },
      },
    },
    '/api/vms/{name}/snapshots/{tag}': {
      delete: { summary: 'delete a snapshot (its children move up to its parent); 409 while a linked clone backs onto it', parameters: [nameParam, tagParam], responses: { '204': { description: 'deleted' }, ...errors(400, 401, 404, 409) } },
    },
    '/api/vms/{name}/snapshots/{tag}/revert': {
      post: {
        summary: 'go back to a snapshot: a running VM continues from it at once, a stopped one resumes there at its next start',
        parameters: [nameParam, tagParam],
        responses: { '200': json(ref('Snapshot'), 'the snapshot now current'), ...errors(400, 401, 404, 409) },
      },
    },
    '/api/vms/{name}/clone': {
      post: {
        summary: 'clone a stopped VM: a full clone (a self-contained copy of its folder, snapshots included) or a linked clone',
        description:
          "A linked clone's disks are empty qcow2 overlays over a snapshot of the source (`snapshot`, or a new snapshot `clone-{clone name}` of its disks), so no disk data is copied; it starts where that snapshot was. The source keeps the snapshot and refuses to delete it, or itself, while the clone exists (409). The source's disks must be qcow2 (409 otherwise). The event stream reports progress (`linked clone of {name}`) by the bytes copied: boot files and a saved state.",
        parameters: [nameParam],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['name'],
                additionalProperties: false,
                properties: {
                  name: { type: 'string', description: "the clone's name" },
                  linked: { type: 'boolean', default: false, description: 'overlays over a snapshot of the source instead of a copy' },
                  snapshot: { type: 'string', description: 'with linked: the source snapshot to base the clone on (404 if there is none); default a new one' },
                },
              },
            },
          },
        },
        responses: { '201': json(ref('Vm'), 'the clone'), ...errors(400, 401, 404, 409, 413, 415) },
      },
    },
    '/api/vms/{name}/stats': {
      get: { summary: 'live figures', parameters: [nameParam], responses: { '200': json(ref('Stats'), 'the figures'), ...errors(400, 401, 404) } },
    },
    '/api/vms/{name}/screenshot': {
      get: {
        summary: 'the screen as PNG',
        parameters: [nameParam],
        responses: { '200': { description: 'the screen', content: { 'image/png': { schema: { type: 'string', format: 'binary' } } } }, ...errors(400, 401, 404, 409) },
      },
    },
    '/api/vms/{name}/log': {
      get: {
        summary: "the VM's log (its last 64 KiB)",
        parameters: [nameParam],
        responses: { '200': { description: 'log lines', content: { 'text/plain': { schema: { type: 'string' } } } }, ...errors(400, 401, 404) },
      },
    },
  },
} as const;
