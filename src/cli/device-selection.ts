// placeholder: replaced by the request grammar once it lands
import { NvrError } from '../errors.js';
import type { DriverInfo } from '../host/types.js';
import type { DeviceSelection } from '../host/inventory.js';

export function selectDevices(ids: string[], driver: DriverInfo): DeviceSelection {
  if (ids.some((i) => i.toLowerCase() === 'all')) return { gpus: driver.gpus };
  return {
    gpus: ids.map((id) => {
      const g = driver.gpus.find((x) => String(x.index) === id || x.uuid === id);
      if (!g) throw new NvrError('DEVICE', `unknown device ${id}`);
      return g;
    }),
  };
}
