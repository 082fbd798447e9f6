import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ArtifactRefusedError,
  createScenarioFile,
  listScenarioFiles,
  planScenarioFiles,
  titleSegments,
} from './scenario-files';
import { parseChallenge } from './registry-client';

const LIMITS = { maxLayerBytes: 100, maxLayers: 4, maxTotalBytes: 150 };

function layer(title: string | undefined, size = 1, extra: Record<string, string> = {}): unknown {
  return {
    mediaType: 'application/vnd.ctfer-io.file',
    digest: `sha256:${'b'.repeat(64)}`,
    size,
    annotations:
      title === undefined ? extra : { 'org.opencontainers.image.title': title, ...extra },
  };
}

describe('titleSegments', () => {
  it.each([
    ['Pulumi.yaml', ['Pulumi.yaml']],
    ['src/main.go', ['src', 'main.go']],
    ['..hidden/x..y', ['..hidden', 'x..y']],
  ])('should accept %j when it is a clean relative path', (title, segments) => {
    expect(titleSegments(title)).toEqual(segments);
  });

  it.each([
    ['', 'is empty'],
    ['/etc/passwd', 'absolute'],
    ['../escape', "'..' segment"],
    ['a/../../b', "'..' segment"],
    ['a/./b', "'.' segment"],
    ['a//b', 'empty path segment'],
    ['dir/', 'empty path segment'],
    ['a\\b', 'backslash'],
    ['a\0b', 'NUL'],
  ])('should refuse %j when it %s', (title, why) => {
    expect(() => titleSegments(title)).toThrow(ArtifactRefusedError);
    expect(() => titleSegments(title)).toThrow(why);
  });
});

describe('planScenarioFiles', () => {
  it('should keep titled layers and skip untitled ones when the manifest is sound', () => {
    const files = planScenarioFiles([layer('a'), layer(undefined), layer('d/b', 2)], LIMITS);
    expect(files.map((f) => [f.title, f.size])).toEqual([
      ['a', 1],
      ['d/b', 2],
    ]);
  });

  it.each([
    ['duplicated titles', [layer('a'), layer('a')], 'duplicated'],
    ['a title used as a directory', [layer('a'), layer('a/b')], 'also the directory'],
    ['a directory used as a title', [layer('a/b'), layer('a')], 'also the directory'],
    [
      'too many layers',
      [layer('a'), layer('b'), layer('c'), layer('d'), layer('e')],
      'more than the limit of 4',
    ],
    ['a layer over the limit', [layer('a', 101)], 'more than the limit of 100'],
    ['a total over the limit', [layer('a', 100), layer('b', 51)], 'add up to more than'],
    [
      'a packed directory',
      [layer('dir', 1, { 'io.deis.oras.content.unpack': 'true' })],
      'packed directory',
    ],
    ['a non-sha256 digest', [{ mediaType: 'x', digest: 'md5:abc', size: 1 }], 'not sha256'],
    ['a negative size', [layer('a', -1)], 'non-negative'],
    ['no layers array', undefined, 'no layers'],
  ])('should refuse the manifest when it has %s', (_case, layers, why) => {
    expect(() => planScenarioFiles(layers, LIMITS)).toThrow(why);
  });
});

describe('parseChallenge', () => {
  it('should read quoted parameters with commas and spaces when the scheme is Bearer', () => {
    expect(
      parseChallenge(
        'Bearer realm="http://127.0.0.1:5003/token",service="test-registry",scope="repository:a:pull,push repository:b:pull"',
      ),
    ).toEqual({
      scheme: 'bearer',
      params: {
        realm: 'http://127.0.0.1:5003/token',
        service: 'test-registry',
        scope: 'repository:a:pull,push repository:b:pull',
      },
    });
  });

  it('should read the scheme when the challenge is Basic', () => {
    expect(parseChallenge('Basic realm="test-realm"')).toEqual({
      scheme: 'basic',
      params: { realm: 'test-realm' },
    });
    expect(parseChallenge(null)).toBeUndefined();
  });
});

describe('createScenarioFile', () => {
  let scratch: string | undefined;
  afterEach(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('should refuse to write through a link when a directory of the title is one', async () => {
    scratch = mkdtempSync(join(tmpdir(), 'cm-files-'));
    const root = join(scratch, 'root');
    const outside = join(scratch, 'outside');
    mkdirSync(root);
    mkdirSync(outside);
    symlinkSync(outside, join(root, 'a'));

    await expect(createScenarioFile(root, 'a/b')).rejects.toThrow('would write through a link');
    expect(readdirSync(outside)).toEqual([]);
  });

  it('should refuse to open a title that is already a link when it exists', async () => {
    scratch = mkdtempSync(join(tmpdir(), 'cm-files-'));
    const root = join(scratch, 'root');
    mkdirSync(root);
    symlinkSync(join(scratch, 'target'), join(root, 'f'));

    await expect(createScenarioFile(root, 'f')).rejects.toThrow('collides with an existing entry');
    expect(readdirSync(scratch).sort()).toEqual(['root']);
  });

  it('should create nested files when the title has subdirectories', async () => {
    scratch = mkdtempSync(join(tmpdir(), 'cm-files-'));
    const handle = await createScenarioFile(scratch, 'a/b/c.txt');
    await handle.close();
    const { files, skipped } = await listScenarioFiles(scratch);
    expect(files.map((f) => f.title)).toEqual(['a/b/c.txt']);
    expect(skipped).toEqual([]);
  });
});
