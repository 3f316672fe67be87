import { describe, expect, it } from 'vitest'
import {
  MAINTENANCE_WINDOW_MS,
  inMaintenanceWindow,
  maintenanceSlotOf,
  maintenanceWindowOffsetMs,
} from './maintenance.js'

// 2026-11-21 is a Saturday.
const at = (iso: string) => new Date(iso)

describe('weekly maintenance window', () => {
  it('places DAY:HH:MM within the week from Sunday 00:00 UTC', () => {
    expect(maintenanceWindowOffsetMs('SUN:00:00')).toBe(0)
    expect(maintenanceWindowOffsetMs('MON:03:30')).toBe((24 * 60 + 210) * 60_000)
    expect(() => maintenanceWindowOffsetMs('XYZ:03:30')).toThrow(/WeeklyMaintenanceWindowStart/)
  })

  it('is open from the start for two hours, and shut before and after', () => {
    expect(inMaintenanceWindow('SAT:22:30', at('2026-11-21T22:30:00Z'))).toBe(true)
    expect(inMaintenanceWindow('SAT:22:30', at('2026-11-22T00:29:59Z'))).toBe(true)
    expect(inMaintenanceWindow('SAT:22:30', at('2026-11-22T00:30:00Z'))).toBe(false)
    expect(inMaintenanceWindow('SAT:22:30', at('2026-11-21T22:29:59Z'))).toBe(false)
    expect(inMaintenanceWindow('TUE:03:00', at('2026-11-21T22:45:00Z'))).toBe(false)
    expect(MAINTENANCE_WINDOW_MS).toBe(2 * 3600 * 1000)
  })

  it('wraps from Saturday night into Sunday', () => {
    expect(inMaintenanceWindow('SAT:23:30', at('2026-11-22T01:00:00Z'))).toBe(true)
    expect(inMaintenanceWindow('SAT:23:30', at('2026-11-22T01:30:00Z'))).toBe(false)
  })

  it('names the half-hour slot of an instant, which is then open', () => {
    const now = at('2026-11-21T22:47:13Z')
    expect(maintenanceSlotOf(now)).toBe('SAT:22:30')
    expect(inMaintenanceWindow(maintenanceSlotOf(now), now)).toBe(true)
  })
})
