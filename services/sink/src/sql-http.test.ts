import { describe, expect, it } from 'vitest'
import { bindableParamValue, readOnlyRefusal, statementKeyword } from './sql-http.ts'

describe('read-only statement check', () => {
  it('lets reads through, past comments and parentheses', () => {
    for (const sql of [
      'SELECT 1',
      '  select 1',
      '-- a comment\nSELECT 1',
      '/* block */ (SELECT 1)',
      'WITH x AS (SELECT 1) SELECT * FROM x',
      'SHOW TABLES',
      'DESCRIBE clicks',
      'desc clicks',
      'EXISTS TABLE clicks',
      "EXPLAIN SELECT 'INSERT INTO x'",
      "SELECT 'INTO OUTFILE' AS text",
    ]) {
      expect(readOnlyRefusal(sql), sql).toBeUndefined()
    }
  })

  it('refuses writes, DDL, settings and INTO OUTFILE with a ClickHouse error code', () => {
    for (const [sql, keyword] of [
      ['INSERT INTO t VALUES (1)', 'INSERT'],
      ['/* SELECT */ DROP TABLE t', 'DROP'],
      ['ALTER TABLE t DELETE WHERE 1', 'ALTER'],
      ['CREATE TABLE x (a UInt8) ENGINE = Memory', 'CREATE'],
      ['SET readonly = 0', 'SET'],
      ['OPTIMIZE TABLE t FINAL', 'OPTIMIZE'],
    ] as const) {
      expect(statementKeyword(sql)).toBe(keyword)
      expect(readOnlyRefusal(sql)).toMatchObject({ code: 164, type: 'READONLY' })
    }
    expect(readOnlyRefusal("SELECT 1 INTO  OUTFILE '/tmp/x'")).toMatchObject({ code: 344 })
    expect(readOnlyRefusal('   ')).toMatchObject({ code: 62 })
  })
})

describe('query parameter values', () => {
  it('undoes the escaping of the HTTP form, which the binder applies again', () => {
    expect(bindableParamValue("it\\'s a\\ttab \\\\ back", 'String')).toBe("it's a\ttab \\ back")
    expect(bindableParamValue('\\N', 'Nullable(String)')).toBeNull()
    expect(bindableParamValue('5', 'UInt32')).toBe('5')
  })

  it('keeps quotes inside Array/Map values as doubled quotes', () => {
    expect(bindableParamValue("['a','it\\'s','b\\\\c']", 'Array(String)')).toBe("['a','it''s','b\\c']")
    expect(bindableParamValue("{'k\\'':1}", 'Map(String, UInt8)')).toBe("{'k''':1}")
  })
})
