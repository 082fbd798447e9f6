export { AppConfig, ConfigError, type LogLevel } from './app-config';
export { ConfigModule } from './config.module';
export { loadConfigFromProcessEnv } from './env';
