import { AppConfig } from './app-config';

/** The only read of the process environment in the service. */
export function loadConfigFromProcessEnv(): AppConfig {
  return AppConfig.fromEnv(process.env);
}
