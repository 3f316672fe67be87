/**
 * MWAA's weekly maintenance window (`WeeklyMaintenanceWindowStart`, `DAY:HH:MM` in UTC, on the
 * hour or half hour; reference §2): when airdock has a change it may apply on its own (a runtime
 * patch: a newer lock for the environment's Airflow version), it starts it only inside the
 * window, with status MAINTENANCE and GRACEFUL worker replacement.
 */

/** How long after `WeeklyMaintenanceWindowStart` pending maintenance may still begin, in ms. */
export const MAINTENANCE_WINDOW_MS = 2 * 3600 * 1000

const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] as const
const WEEK_MS = 7 * 24 * 3600 * 1000

/**
 * The window's start within the week, in ms after Sunday 00:00 UTC.
 * @throws Error when `start` is not `DAY:HH:MM` (validation refuses such values)
 */
export function maintenanceWindowOffsetMs(start: string): number {
  const match = /(SUN|MON|TUE|WED|THU|FRI|SAT):([01]\d|2[0-3]):(00|30)/.exec(start)
  if (!match) throw new Error(`bad WeeklyMaintenanceWindowStart ${start}`)
  const day = DAYS.indexOf(match[1] as (typeof DAYS)[number])
  return ((day * 24 + Number(match[2])) * 60 + Number(match[3])) * 60_000
}

/**
 * True when `now` is within `windowMs` after the weekly start (the window may wrap from
 * Saturday into Sunday).
 */
export function inMaintenanceWindow(
  start: string,
  now: Date,
  windowMs: number = MAINTENANCE_WINDOW_MS,
): boolean {
  const sundayMs =
    Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) -
    now.getUTCDay() * 24 * 3600 * 1000
  const sinceStart =
    (now.getTime() - sundayMs - maintenanceWindowOffsetMs(start) + WEEK_MS) % WEEK_MS
  return sinceStart < windowMs
}

/** The `DAY:HH:MM` of the half-hour slot `now` is in (tests and tools that want "now"). */
export function maintenanceSlotOf(now: Date): string {
  const hh = String(now.getUTCHours()).padStart(2, '0')
  const mm = now.getUTCMinutes() < 30 ? '00' : '30'
  return `${DAYS[now.getUTCDay()]}:${hh}:${mm}`
}
