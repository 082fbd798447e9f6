// Types of what scripts/generate-proto-types.mjs exports, for the tests that use it.
import type { Root } from 'protobufjs';

/** Where the generated file lives. */
export declare const OUTPUT: string;
/** The lowerCamelCase JSON name protoc gives a field. */
export declare function jsonName(name: string): string;
/** The API protos, with their comments, resolved. */
export declare function loadApi(): Root;
/** The generated file's text. */
export declare function render(): Promise<string>;
