import { createHash } from 'node:crypto'
import { sampleSpec } from '../../test/support/sample-spec.js'
import { describe, expect, it } from 'vitest'
import { ENVIRONMENT_CLASSES } from '../domain/environment-classes.js'
import type { EnvironmentSpec } from '../domain/environment.js'
import { isOwnedAirflowOption } from '../domain/airflow-options.js'
import { defaultLoggingConfiguration } from '../domain/validation.js'
import {
  BATCH_NICENESS,
  brokerConfig,
  configurationOptionsToEnv,
  environmentLayout,
  planComponents,
  portsForBlock,
  tasksPerWorker,
  type PlanInput,
} from './components.js'

const spec = sampleSpec

function input(s: EnvironmentSpec, workerCount = s.minWorkers): PlanInput {
  return {
    environmentName: 'env',
    environmentId: 'abc123',
    spec: s,
    layout: environmentLayout('/data/environments', 'abc123'),
    runtime: {
      airflowVersion: '3.3.2',
      key: '3.3.2-0123456789ab',
      dir: '/rt/3.3.2',
      binDir: '/rt/3.3.2/bin',
      airflow: '/rt/3.3.2/bin/airflow',
      python: '/rt/3.3.2/bin/python',
      lockFile: '/repo/runtimes/3.3.2/requirements.lock',
    },
    ports: portsForBlock(18000, 2),
    secrets: {
      fernetKey: 'fernet',
      jwtSecret: 'jwt',
      apiSecretKey: 'api',
      databasePassword: 'db pass/with:chars',
      brokerPassword: 'broker-secret-xyz',
    },
    database: { host: '127.0.0.1', port: 8732, name: 'airflow_abc123', user: 'airflow_abc123' },
    workers: Array.from({ length: workerCount }, (_, i) => i + 1),
    webservers: s.minWebservers,
    workerDrainTimeoutMs: 43_200_000,
    hostPath: '/usr/bin:/bin',
    region: 'eu-west-1',
    redisServer: '/usr/bin/redis-server',
  }
}

const names = (s: EnvironmentSpec, workers?: number): string[] =>
  planComponents(input(s, workers)).map((c) => c.name)

describe('planComponents per environment class', () => {
  it('mw1.micro: api-server, one LocalExecutor scheduler (parallelism 3), dag-processor, triggerer', () => {
    const micro = spec({
      environmentClass: 'mw1.micro',
      schedulers: 1,
      minWebservers: 1,
      maxWebservers: 1,
      minWorkers: 1,
      maxWorkers: 1,
    })
    const plan = planComponents(input(micro))
    expect(plan.map((c) => c.name)).toEqual([
      'api-server-1',
      'scheduler-1',
      'dag-processor-1',
      'triggerer-1',
    ])
    for (const c of plan) {
      expect(c.env.AIRFLOW__CORE__EXECUTOR).toBe('LocalExecutor')
      expect(c.env.AIRFLOW__CORE__PARALLELISM).toBe('3')
      expect(c.env.AIRFLOW__CELERY__BROKER_URL).toBeUndefined()
    }
  })

  it.each(ENVIRONMENT_CLASSES.filter((c) => !c.hybrid))(
    '$name: broker, api-servers × MinWebservers, schedulers, dag-processor, triggerer, workers with concurrency $tasksPerWorker',
    (cls) => {
      const s = spec({ environmentClass: cls.name, schedulers: 3, minWebservers: 2 })
      const plan = planComponents(input(s, 2))
      expect(plan.map((c) => c.name)).toEqual([
        'broker-1',
        'api-server-1',
        'api-server-2',
        'scheduler-1',
        'scheduler-2',
        'scheduler-3',
        'dag-processor-1',
        'triggerer-1',
        'worker-1',
        'worker-2',
      ])
      const broker = plan.find((c) => c.name === 'broker-1')!
      expect(broker.args).toEqual(['/data/environments/abc123/broker/redis.conf'])
      expect(broker.args.join(' ')).not.toContain('broker-secret-xyz')
      const config = brokerConfig(input(s, 2))
      expect(config).not.toContain('broker-secret-xyz')
      const digest = createHash('sha256').update('broker-secret-xyz').digest('hex')
      expect(config).toContain(`user default on #${digest} ~* &* +@all`)
      const worker = plan.find((c) => c.name === 'worker-1')!
      expect(worker.args).toEqual(
        expect.arrayContaining(['celery', 'worker', '--concurrency', String(cls.tasksPerWorker)]),
      )
      expect(worker.env.AIRFLOW__CORE__EXECUTOR).toBe('CeleryExecutor')
      expect(worker.args).toEqual(expect.arrayContaining(['--queues', 'default']))
      // Stopping a worker is a drain: SIGTERM to the main pid, SIGKILL only after the drain bound.
      expect(worker.stopSignal).toBe('SIGTERM')
      expect(worker.stopGracePeriodMs).toBe(43_200_000)
    },
  )

  it('gives every api-server its own port from the block and every component the same secrets', () => {
    const plan = planComponents(input(spec({ minWebservers: 3, maxWebservers: 3 })))
    const ports = plan
      .filter((c) => c.component === 'api-server')
      .map((c) => c.args[c.args.indexOf('--port') + 1])
    expect(ports).toEqual(['18034', '18035', '18036'])
    const airflow = plan.filter((c) => c.component !== 'broker')
    for (const key of [
      'AIRFLOW__CORE__FERNET_KEY',
      'AIRFLOW__API_AUTH__JWT_SECRET',
      'AIRFLOW__API__SECRET_KEY',
      'AIRFLOW__DATABASE__SQL_ALCHEMY_CONN',
    ]) {
      expect(new Set(airflow.map((c) => c.env[key])).size, key).toBe(1)
    }
    expect(airflow[0]!.env.AIRFLOW__DATABASE__SQL_ALCHEMY_CONN).toBe(
      'postgresql+psycopg2://airflow_abc123:db%20pass%2Fwith%3Achars@127.0.0.1:8732/airflow_abc123',
    )
    expect(airflow[0]!.env.AIRFLOW__CORE__EXECUTION_API_SERVER_URL).toBe(
      'http://127.0.0.1:18032/execution/',
    )
  })

  it('lets AirflowConfigurationOptions override defaults but never airdock-owned settings', () => {
    const s = spec({
      airflowConfigurationOptions: {
        'core.default_task_retries': '2',
        'dag_processor.refresh_interval': '60',
        'core.executor': 'SequentialExecutor',
        'database.sql_alchemy_conn': 'sqlite:////tmp/x.db',
      },
    })
    const scheduler = planComponents(input(s)).find((c) => c.name === 'scheduler-1')!
    expect(scheduler.env.AIRFLOW__CORE__DEFAULT_TASK_RETRIES).toBe('2')
    expect(scheduler.env.AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL).toBe('60')
    expect(scheduler.env.AIRFLOW__CORE__EXECUTOR).toBe('CeleryExecutor')
    expect(scheduler.env.AIRFLOW__DATABASE__SQL_ALCHEMY_CONN).toMatch(/^postgresql/)
  })

  it('workers are named by the indices asked for; the web server count sets the api-servers', () => {
    const plan = planComponents({
      ...input(spec({ maxWebservers: 5 })),
      workers: [2, 7],
      webservers: 4,
    })
    expect(plan.filter((c) => c.component === 'worker').map((c) => c.name)).toEqual([
      'worker-2',
      'worker-7',
    ])
    expect(plan.find((c) => c.name === 'worker-7')!.args).toEqual(
      expect.arrayContaining(['--celery-hostname', 'abc123-worker-7@%h']),
    )
    expect(plan.filter((c) => c.component === 'api-server').map((c) => c.args[4])).toEqual([
      '18034',
      '18035',
      '18036',
      '18037',
    ])
  })

  it('every option airdock forces on any component is one that validation refuses', () => {
    for (const environmentClass of ['mw1.small', 'mw1.micro']) {
      const base = spec(
        environmentClass === 'mw1.micro'
          ? { environmentClass, schedulers: 1, maxWorkers: 1, minWebservers: 1, maxWebservers: 1 }
          : { environmentClass },
      )
      const variables = new Set(
        planComponents(input(base)).flatMap((c) =>
          Object.keys(c.env).filter((k) => /^AIRFLOW__[A-Z_]+?__[A-Z_]+$/.test(k)),
        ),
      )
      for (const variable of variables) {
        const [, section, option] = /^AIRFLOW__([A-Z_]+?)__([A-Z_]+)$/.exec(variable)!
        const key = `${section!.toLowerCase()}.${option!.toLowerCase()}`
        const tried = planComponents(
          input({ ...base, airflowConfigurationOptions: { [key]: 'user-value' } }),
        )
        const forced = tried.some((c) => variable in c.env && c.env[variable] !== 'user-value')
        if (key === 'core.parallelism' && environmentClass === 'mw1.micro') {
          // Documented: mw1.micro's scheduler runs 3 tasks at a time whatever is set.
          continue
        }
        expect(!forced || isOwnedAirflowOption(key), `${key} is forced but not refused`).toBe(true)
      }
    }
  })

  it('tasks per worker come from celery.worker_autoscale when set, else from the class', () => {
    expect(tasksPerWorker(spec({ environmentClass: 'mw1.medium' }))).toBe(10)
    expect(
      tasksPerWorker(spec({ airflowConfigurationOptions: { 'celery.worker_autoscale': '8,2' } })),
    ).toBe(8)
    expect(
      tasksPerWorker(spec({ airflowConfigurationOptions: { 'celery.worker_autoscale': 'x' } })),
    ).toBe(5)
  })

  it('changes only worker specs when MinWorkers changes, and nothing when MaxWorkers changes', () => {
    const a = planComponents(input(spec({ minWorkers: 1, maxWorkers: 10 }), 1))
    const b = planComponents(input(spec({ minWorkers: 1, maxWorkers: 20 }), 1))
    expect(b).toEqual(a)
    const c = planComponents(input(spec({ minWorkers: 2 }), 2))
    expect(c.filter((x) => x.component !== 'worker')).toEqual(
      a.filter((x) => x.component !== 'worker'),
    )
    expect(names(spec({ minWorkers: 2 }), 2).filter((n) => n.startsWith('worker'))).toEqual([
      'worker-1',
      'worker-2',
    ])
  })

  it('runs what executes user tasks or parses user code at batch priority, the rest at normal', () => {
    const niceness = (s: EnvironmentSpec) =>
      Object.fromEntries(planComponents(input(s)).map((c) => [c.name, c.niceness ?? 0]))
    expect(niceness(spec({ minWebservers: 2, minWorkers: 2 }))).toEqual({
      'broker-1': 0,
      'api-server-1': 0,
      'api-server-2': 0,
      // Celery classes: the scheduler only schedules; the workers run the tasks.
      'scheduler-1': 0,
      'scheduler-2': 0,
      'dag-processor-1': BATCH_NICENESS,
      'triggerer-1': 0,
      'worker-1': BATCH_NICENESS,
      'worker-2': BATCH_NICENESS,
    })
    const micro = spec({
      environmentClass: 'mw1.micro',
      schedulers: 1,
      minWebservers: 1,
      maxWebservers: 1,
      minWorkers: 1,
      maxWorkers: 1,
    })
    // mw1.micro: the scheduler's LocalExecutor forks the tasks.
    expect(niceness(micro)).toEqual({
      'api-server-1': 0,
      'scheduler-1': BATCH_NICENESS,
      'dag-processor-1': BATCH_NICENESS,
      'triggerer-1': 0,
    })
    expect(BATCH_NICENESS).toBeGreaterThan(0)
  })

  it('sets each component’s log level from its MWAA log type', () => {
    const logging = defaultLoggingConfiguration()
    logging.schedulerLogs = { enabled: true, logLevel: 'DEBUG' }
    logging.workerLogs = { enabled: true, logLevel: 'ERROR' }
    const plan = planComponents(input(spec({ loggingConfiguration: logging })))
    expect(plan.find((c) => c.name === 'scheduler-1')!.env.AIRFLOW__LOGGING__LOGGING_LEVEL).toBe(
      'DEBUG',
    )
    expect(plan.find((c) => c.name === 'worker-1')!.env.AIRFLOW__LOGGING__LOGGING_LEVEL).toBe(
      'ERROR',
    )
    expect(plan.find((c) => c.name === 'scheduler-1')!.env.MWAA_AIRFLOW_COMPONENT).toBe('scheduler')
  })
})

describe('configurationOptionsToEnv', () => {
  it('maps section.option to AIRFLOW__SECTION__OPTION', () => {
    expect(
      configurationOptionsToEnv({ 'celery.worker_autoscale': '5,5', 'foo.bar.baz': 'x' }),
    ).toEqual({
      AIRFLOW__CELERY__WORKER_AUTOSCALE: '5,5',
      AIRFLOW__FOO__BAR_BAZ: 'x',
    })
  })
})
