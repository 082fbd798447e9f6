/**
 * chall-manager's SDK for Node.js scenarios: `run` wires a scenario to the configuration
 * chall-manager sets and the outputs it reads; `variate` derives a flag per instance.
 */
export { run, type Factory, type Outputs, type Request, type Response } from './run';
export { variate, type VariateOptions } from './variate';
